"""Every public method of ``tx.volunteer`` is a declared operation, and the declarations agree
with the routes the module writes by hand."""

from __future__ import annotations

import inspect

import pytest

from ngo_kit import Kit
from ngo_kit.modules.volunteer.service import VolunteerService
from ngo_kit.operations import Operation, operations_of, public_methods

MOUNT = "/api/orgs/{org}/volunteer"
OPERATIONS = operations_of(VolunteerService, "volunteer")


def _hand_written() -> set[tuple[str, str]]:
    """The method and path of each route in the module's hand-written router."""
    from fastapi.routing import APIRoute

    from ngo_kit.modules.volunteer.web import build_router

    return {
        (method, route.path)
        for route in build_router().routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }


def test_every_public_method_of_the_service_is_a_declared_operation() -> None:
    declared = {op.attribute for op in OPERATIONS}
    undeclared = sorted(set(public_methods(VolunteerService)) - declared)
    assert not undeclared, f"declare these with @operation(...): {undeclared}"
    assert len(OPERATIONS) == len(public_methods(VolunteerService))


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_each_operation_is_reached_over_http_or_says_why_not(op: Operation) -> None:
    assert op.over_http != bool(op.not_http), op
    names = set(inspect.signature(getattr(VolunteerService, op.attribute)).parameters)
    missing = [p for p in op.path_parameters if p not in names]
    assert not missing, f"{op.name}: path parameters {missing} are not parameters of the method"


def test_operations_name_only_permissions_the_kit_knows(vkit: Kit) -> None:
    unknown = {op.name: op.permission for op in OPERATIONS if op.permission}
    unknown = {name: p for name, p in unknown.items() if p not in vkit.permissions}
    assert not unknown


def test_custom_operations_have_their_hand_written_route_and_no_other_does(vkit: Kit) -> None:
    pytest.importorskip("fastapi")
    from ngo_kit.web import create_app

    # the app's routes as its OpenAPI document lists them (included routers are nested)
    paths = create_app(vkit).openapi()["paths"]
    app_routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    hand_written = _hand_written()
    custom = {(op.method, op.path): op.name for op in OPERATIONS if op.custom}
    missing = {
        name: f"{method} {MOUNT}{path}"
        for (method, path), name in custom.items()
        if (method, f"{MOUNT}{path}") not in app_routes
    }
    assert not missing, f"custom=True without a hand-written route: {missing}"
    generated = {
        op.name: f"{op.method} {op.path}"
        for op in OPERATIONS
        if op.over_http and not op.custom and (op.method, op.path) in hand_written
    }
    assert not generated, f"hand-written routes of operations not declared custom=True: {generated}"
