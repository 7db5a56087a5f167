"""``ngo-kit openapi``: the document front ends generate their clients from."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from ngo_kit.cli import command_line
from ngo_kit.reference import installed_modules
from ngo_kit.web.operations import operations_of_module


def _openapi(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(command_line(["openapi"]), ["openapi", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def _operation_ids(document: dict[str, Any]) -> set[str]:
    return {op["operationId"] for item in document["paths"].values() for op in item.values()}


def test_the_printed_document_has_every_declared_http_operation() -> None:
    document = _openapi()
    assert document["openapi"].startswith("3.")
    declared = {
        op.qualified_name
        for module in installed_modules()
        for op in operations_of_module(module)
        if op.over_http
    }
    assert {"webhooks.add_endpoint", "rewards_stock.link", "hours_points.awards"} <= declared
    missing = declared - _operation_ids(document)
    assert not missing, f"declared but not in the document: {', '.join(sorted(missing))}"


def test_modules_limits_the_document_to_those_named() -> None:
    document = _openapi("--modules", "webhooks")
    core = ("/api/orgs/{org}/api-keys", "/api/orgs/{org}/events")  # core's, always mounted
    paths = [
        p for p in document["paths"] if p.startswith("/api/orgs/{org}/") and not p.startswith(core)
    ]
    assert paths and all(p.startswith("/api/orgs/{org}/webhooks/") for p in paths)
    add = document["paths"]["/api/orgs/{org}/webhooks/endpoints"]["post"]
    assert add["x-ngo-kit-permission"] == "webhooks.manage"
    assert "already_exists" in add["responses"]["409"]["description"]
