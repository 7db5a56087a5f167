"""Operation declarations: what the decorator records and the mistakes it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from ngo_kit.errors import ConfigurationError, Conflict, ValidationFailed
from ngo_kit.operations import (
    call_arguments,
    declared,
    decode_cursor,
    encode_cursor,
    operation,
    operations_of,
    parameters_of,
    public_methods,
    result_of,
    summary_of,
    takes_key,
)


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


class _Typed:
    @operation("POST /things/{thing_id}")
    def change(
        self, thing_id: str, data: dict[str, Any] | None = None, /, *, note: str = "", key: str
    ) -> None: ...

    @operation("GET /later")
    def later(self, when: Unknowable) -> Unknowable:  # type: ignore[name-defined]  # noqa: F821
        """First line
        goes on.

        Second paragraph."""


def test_parameters_results_and_arguments_are_read_from_the_signature() -> None:
    (change,) = [op for op in operations_of(_Typed, "t") if op.name == "change"]
    params = parameters_of(change)
    assert [(p.name, p.required, p.positional_only) for p in params] == [
        ("thing_id", True, True),
        ("data", False, True),
        ("note", False, False),
        ("key", True, False),
    ]
    assert result_of(change) is None and takes_key(change)
    args, kwargs = call_arguments(change, {"thing_id": "a", "key": "k"})
    assert (args, kwargs) == (["a", None], {"key": "k"})


def test_an_annotation_only_type_checkers_see_reads_as_any() -> None:
    (later,) = [op for op in operations_of(_Typed, "t") if op.name == "later"]
    assert parameters_of(later)[0].annotation is Any and result_of(later) is Any
    assert summary_of(later) == ("First line goes on.", "Second paragraph.")


def test_a_cursor_reads_back_and_refuses_alteration() -> None:
    cursor = encode_cursor("kale", 3)
    assert decode_cursor(cursor) == ["kale", 3] and decode_cursor(None) is None
    token, digest = cursor.split(".")
    for altered in (encode_cursor("leek", 3).split(".")[0] + "." + digest, token, "%%%", ""):
        with pytest.raises(ValidationFailed) as refused:
            decode_cursor(altered, "after")
        assert (refused.value.field, refused.value.rule) == ("after", "cursor_invalid")
