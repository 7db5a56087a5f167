"""Operation declarations: what the decorator records and the mistakes it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from ngo_kit.errors import ConfigurationError, Conflict
from ngo_kit.operations import declared, operation, operations_of, public_methods


class _Base:
    @operation("GET /things/{thing_id}", own=True, permission="things.view")
    def thing(self, thing_id: str) -> dict[str, Any]:
        return {"id": thing_id}

    def helper(self) -> None:
        """Public but undeclared: the coverage test must see it."""


class _Service(_Base):
    @operation("POST /things", permission="things.add", errors=(Conflict,))
    def add(self, name: str) -> dict[str, Any]:
        return {"name": name}

    @operation(not_http="SYSTEM only: run from the CLI", changes=True, cli="purge")
    def purge(self) -> int:
        return 0

    def _private(self) -> None:
        pass


def test_the_decorator_records_and_returns_the_method_itself() -> None:
    spec = declared(_Service.add)
    assert spec is not None
    assert (spec.method, spec.path, spec.permission, spec.changes) == (
        "POST",
        "/things",
        "things.add",
        True,
    )
    assert spec.errors == (Conflict,)
    assert _Service().add("x") == {"name": "x"}


def test_operations_are_collected_across_the_classes_a_service_is_made_of() -> None:
    ops = {op.name: op for op in operations_of(_Service, "things")}
    assert set(ops) == {"add", "purge", "thing"}
    assert ops["thing"].qualified_name == "things.thing"
    assert ops["thing"].path_parameters == ("thing_id",)
    assert ops["thing"].changes is False and ops["thing"].own is True
    assert ops["purge"].over_http is False and ops["purge"].cli == "purge"
    assert public_methods(_Service) == ["add", "helper", "purge", "thing"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"http": "FETCH /x"},
        {"http": "GET x"},
        {"http": "GET /x", "not_http": "why"},
        {},
        {"not_http": "why"},
        {"not_http": "why", "changes": False, "custom": True},
    ],
)
def test_malformed_declarations_are_refused_at_import(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"core\.E050"):
        operation(**kwargs)


def test_two_operations_on_one_route_are_refused() -> None:
    class Twice:
        @operation("GET /a")
        def one(self) -> None: ...

        @operation("GET /a")
        def two(self) -> None: ...

    with pytest.raises(ConfigurationError, match=r"core\.E051"):
        operations_of(Twice, "twice")
