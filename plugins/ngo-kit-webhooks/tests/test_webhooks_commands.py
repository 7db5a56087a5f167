"""``ngo-kit webhooks ...``: endpoints managed from the command line."""

from __future__ import annotations

import click
import ngo_kit_webhooks
import pytest
from click.testing import CliRunner
from ngo_kit_webhooks.commands import webhooks_group

from ngo_kit import SYSTEM, Kit, NgoKitError
from ngo_kit.cli import CliState
from ngo_kit.testing import KitFactory


def run(kit: Kit, *args: str) -> str:
    state = CliState(None, (), False)
    state._kit = kit  # the command line's lazily built kit, here the test's
    result = CliRunner().invoke(webhooks_group, list(args), obj=state, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_endpoints_are_added_listed_rotated_and_removed(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["webhooks"], plugins=[ngo_kit_webhooks])
    kit.create_organisation("rainbow", "Rainbow Aid")
    assert "no endpoints yet" in run(kit, "list", "rainbow")
    added = run(
        kit,
        "add",
        "rainbow",
        "https://crm.example.org/hook",
        "--event",
        "points_awarded",
        "--event",
        "stock_moved",
    )
    endpoint_id = added.split()[1]
    secret = added.splitlines()[1].removeprefix("secret: ")
    assert secret.startswith("whsec_")
    listed = run(kit, "list", "rainbow")
    assert listed.strip() == (
        f"{endpoint_id}\tactive\tpoints_awarded,stock_moved\thttps://crm.example.org/hook"
    )
    rotated = run(kit, "rotate-secret", "rainbow", endpoint_id)
    assert rotated.startswith("secret: whsec_") and secret not in rotated
    assert run(kit, "remove", "rainbow", endpoint_id).strip() == f"removed {endpoint_id}"
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        assert tx.webhooks.list_endpoints() == []


def test_an_unknown_event_is_refused_by_the_command_line(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["webhooks"], plugins=[ngo_kit_webhooks], upgrade=False)
    state = CliState(None, (), False)
    state._kit = kit
    result = CliRunner().invoke(
        webhooks_group, ["add", "rainbow", "https://x.example.org", "--event", "nope"], obj=state
    )
    assert result.exit_code == 2 and "'nope' is not one of" in result.output


def test_without_the_module_the_commands_say_so(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[])
    kit.create_organisation("rainbow", "Rainbow Aid")
    with pytest.raises(NgoKitError, match="webhooks module is not enabled"):
        run(kit, "list", "rainbow")


def test_the_plugin_adds_the_group_through_the_hook() -> None:
    group = click.Group()
    ngo_kit_webhooks.ngo_kit_register_commands(cli=group)
    assert set(group.commands["webhooks"].commands) == {  # type: ignore[attr-defined]
        "list",
        "add",
        "rotate-secret",
        "remove",
    }
