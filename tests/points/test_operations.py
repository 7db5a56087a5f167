"""Every public operation of ``tx.points`` is declared once, and the declarations are true: path
parameters are the method's parameters, and each hand-written route exists where it says."""

from __future__ import annotations

import inspect

import pytest

from ngo_kit import Kit
from ngo_kit.modules.points.service import PointsService
from ngo_kit.operations import operations_of, public_methods

MOUNT = "/api/orgs/{org}/points"


def test_every_public_method_of_the_points_service_is_a_declared_operation() -> None:
    declared = {op.attribute for op in operations_of(PointsService, "points")}
    assert sorted(set(public_methods(PointsService)) - declared) == []


def test_every_path_parameter_is_a_parameter_of_the_method() -> None:
    for op in operations_of(PointsService, "points"):
        assert op.function is not None
        parameters = inspect.signature(op.function).parameters
        for name in op.path_parameters:
            assert name in parameters, f"{op.qualified_name}: {{{name}}} in {op.path}"


def test_every_hand_written_operation_has_its_route(pkit: Kit) -> None:
    pytest.importorskip("fastapi")
    from ngo_kit.web import create_app

    # the app's OpenAPI document lists its routes (FastAPI mounts included routers lazily);
    # a hand-written route is documented with its operation, so it is listed there
    paths = create_app(pkit).openapi()["paths"]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    custom = [op for op in operations_of(PointsService, "points") if op.custom]
    assert custom, "the points module has hand-written routes"
    missing = [op.name for op in custom if (op.method, MOUNT + (op.path or "")) not in routes]
    assert missing == []
