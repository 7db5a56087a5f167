"""Every public operation of ``tx.inventory`` is declared, and each hand-written route exists."""

from __future__ import annotations

import inspect

from ngo_kit import Kit
from ngo_kit.modules.inventory.service import InventoryService
from ngo_kit.operations import operations_of, public_methods
from ngo_kit.web import create_app

MOUNT = "/api/orgs/{org}/inventory"


def test_every_public_method_of_the_inventory_service_is_a_declared_operation() -> None:
    declared = {op.attribute for op in operations_of(InventoryService, "inventory")}
    undeclared = sorted(set(public_methods(InventoryService)) - declared)
    assert undeclared == [], f"declare these with @operation(...): {undeclared}"


def test_operations_over_http_name_their_path_parameters_after_the_methods_parameters() -> None:
    for op in operations_of(InventoryService, "inventory"):
        assert op.function is not None
        parameters = inspect.signature(op.function).parameters
        missing = [p for p in op.path_parameters if p not in parameters]
        assert missing == [], f"{op.qualified_name}: {op.path} names no parameter {missing}"


def test_every_hand_written_operation_has_its_route_in_the_app(kit: Kit) -> None:
    # the app's routes as it publishes them (FastAPI nests included routers in ``app.routes``)
    paths = create_app(kit).openapi()["paths"]
    routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    custom = [op for op in operations_of(InventoryService, "inventory") if op.custom]
    assert custom, "the inventory module has hand-written routes"
    missing = [
        f"{op.method} {MOUNT}{op.path} ({op.name})"
        for op in custom
        if (op.method, f"{MOUNT}{op.path}") not in routes
    ]
    assert missing == []
