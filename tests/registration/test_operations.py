"""Every public operation of ``tx.registration`` is declared, and what its declaration says of
HTTP holds: hand-written routes exist where it says so, path parameters are the method's."""

from __future__ import annotations

import inspect

import pytest

from ngo_kit import Kit
from ngo_kit.modules.registration.service import RegistrationService
from ngo_kit.operations import Operation, operations_of, public_methods
from ngo_kit.web import create_app

PREFIX = "/api/orgs/{org}/registration"
OPERATIONS = operations_of(RegistrationService, "registration")


def test_every_public_method_of_the_service_is_a_declared_operation() -> None:
    declared = {op.attribute for op in OPERATIONS}
    undeclared = [name for name in public_methods(RegistrationService) if name not in declared]
    assert undeclared == []


def test_every_operation_is_reached_over_http_or_says_why_not() -> None:
    for op in OPERATIONS:
        assert op.over_http or op.not_http, op.name
        assert not (op.public and op.permission), op.name


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.over_http], ids=lambda op: op.name)
def test_path_parameters_are_parameters_of_the_method(op: Operation) -> None:
    assert op.function is not None
    parameters = inspect.signature(op.function).parameters
    for name in op.path_parameters:
        assert name in parameters, f"{op.name}: {{{name}}} is not a parameter"


def test_every_hand_written_operation_has_its_route(rkit: Kit) -> None:
    # The app's OpenAPI document lists its routes by path and method however routers nest.
    paths = create_app(rkit).openapi()["paths"]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    custom = [op for op in OPERATIONS if op.custom]
    assert custom, "registration has hand-written routes"
    missing = [
        f"{op.name}: {op.method} {PREFIX}{op.path}"
        for op in custom
        if (op.method, PREFIX + (op.path or "")) not in routes
    ]
    assert missing == []


def test_the_shell_commands_are_declared_on_the_operations_they_run() -> None:
    from ngo_kit.modules.registration.commands import registration_group

    declared = {op.cli: op.name for op in OPERATIONS if op.cli}
    assert declared == {"export": "export_personal_data", "erase": "erase", "purge": "purge"}
    assert set(declared) <= set(registration_group.commands)
