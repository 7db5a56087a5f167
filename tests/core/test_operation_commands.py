"""Commands generated from operations declared with ``cli=``."""

from __future__ import annotations

import uuid
from typing import Any

import click
from click.testing import CliRunner, Result
from pydantic import Field

from ngo_kit import SYSTEM, Kit, hookimpl
from ngo_kit.cli import CliState
from ngo_kit.context import Context
from ngo_kit.errors import PermissionDenied
from ngo_kit.operation_commands import add_operation_commands
from ngo_kit.operations import operation
from ngo_kit.plugins import Module, Permission, Registrar
from ngo_kit.schemas import InputModel, coerce
from ngo_kit.testing import KitFactory

MEMBER = uuid.uuid4()


class SeedsIn(InputModel):
    """Seeds to sow."""

    kind: str = Field(min_length=1, max_length=20)
    rows: int = Field(ge=1, le=10)
    tags: list[str] = Field(default_factory=list)


class SeedsService:
    """Answers from its arguments, after checking the permission."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @operation("POST /sowings", permission="seeds.sow", cli="sow")
    def sow(self, data: SeedsIn | dict[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        """Sow seeds in rows."""
        spec = coerce(SeedsIn, data, kwargs)
        self.tx.require("seeds.sow")
        return {
            "kind": spec.kind,
            "rows": spec.rows,
            "tags": spec.tags,
            "org": self.tx.require_org().slug,
        }

    @operation(not_http="SYSTEM only", changes=True, cli="count")
    def count(self, plot_id: uuid.UUID, deep: bool = False) -> list[dict[str, Any]]:
        """Count the seeds of a plot."""
        return [{"plot": plot_id, "deep": deep}, {"plot": type(plot_id).__name__, "deep": 0}]

    @operation(not_http="SYSTEM only", changes=True, cli="burn")
    def burn(self) -> None:
        """Burn everything."""


SEEDS = Module("seeds", description="seeds", service=SeedsService)


class SeedsPlugin:
    ngo_kit_plugin_name = "tests.seeds"

    @hookimpl
    def ngo_kit_register_modules(self, register: Registrar[Module]) -> None:
        register(SEEDS)

    @hookimpl
    def ngo_kit_register_permissions(self, register: Registrar[Permission]) -> None:
        register(Permission("seeds.sow", "sow"))


def run(kit: Kit, group: click.Group, *args: str) -> Result:
    state = CliState(None, (), False)
    state._kit = kit  # the command line's lazily built kit, here the test's
    return CliRunner().invoke(group, list(args), obj=state)


def test_operations_become_commands_with_options_from_their_input(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=["seeds"], plugins=[SeedsPlugin()])
    kit.create_organisation("rainbow", "Rainbow")
    root = click.Group()
    assert add_operation_commands(root, [SEEDS]) == []
    seeds = root.commands["seeds"]
    assert isinstance(seeds, click.Group) and set(seeds.commands) == {"sow", "count", "burn"}
    sowed = run(
        kit,
        root,
        "seeds",
        "sow",
        "--org",
        "rainbow",
        "--kind",
        "kale",
        "--rows",
        "3",
        "--tags",
        "a",
        "--tags",
        "b",
    )
    assert sowed.exit_code == 0, sowed.output
    assert sowed.output.splitlines() == [
        "kind: kale",
        "rows: 3",
        'tags: ["a", "b"]',
        "org: rainbow",
    ]
    plot = uuid.uuid4()
    counted = run(kit, root, "seeds", "count", "--org", "rainbow", "--plot-id", str(plot), "--deep")
    assert counted.output.splitlines() == [f"{plot}\tTrue", "UUID\t0"]
    assert run(kit, root, "seeds", "burn", "--org", "rainbow").output == "done\n"


def test_bad_input_and_missing_rights_are_refused(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["seeds"], plugins=[SeedsPlugin()])
    kit.create_organisation("rainbow", "Rainbow")
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        tx.tenancy.add_member(MEMBER)
    root = click.Group()
    add_operation_commands(root, [SEEDS])
    missing = run(kit, root, "seeds", "sow", "--org", "rainbow", "--kind", "kale")
    assert missing.exit_code == 2 and "--rows" in missing.output
    denied = run(
        kit,
        root,
        "seeds",
        "sow",
        "--org",
        "rainbow",
        "--kind",
        "kale",
        "--rows",
        "1",
        "--as",
        str(MEMBER),
    )
    assert isinstance(denied.exception, PermissionDenied)
    bad = run(kit, root, "seeds", "count", "--org", "rainbow", "--plot-id", "nope")
    assert bad.exception is not None and "plot_id" in str(bad.exception)


def test_a_hand_written_command_of_the_same_name_is_kept() -> None:
    root = click.Group()
    seeds = click.Group("seeds")
    hand_written = click.Command("sow")
    seeds.add_command(hand_written)
    root.add_command(seeds)
    assert add_operation_commands(root, [SEEDS]) == ["seeds sow"]
    assert seeds.commands["sow"] is hand_written and "count" in seeds.commands
