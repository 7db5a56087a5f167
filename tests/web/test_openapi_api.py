"""The OpenAPI document of an app with every built-in module: complete and self-consistent."""

from __future__ import annotations

from typing import Any

from web_api_support import Api

MODULES = ("registration", "points", "inventory", "volunteer")


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def test_every_module_contributes_routes_under_its_organisation_path(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for module in MODULES:
        assert any(p.startswith(f"/api/orgs/{{org}}/{module}/") for p in spec["paths"]), module
    assert "/api/certificates/verify" in spec["paths"]


def test_organisation_paths_declare_the_org_parameter(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, method, operation in _operations(spec):
        if "{org}" in path:
            names = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
            assert ("org", "path") in names, (method, path)


def test_operation_ids_are_unique_and_problems_are_documented(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    operations = _operations(spec)
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations:
        if path.startswith("/api/orgs/{org}/"):
            for status in ("401", "403", "404", "409", "422"):
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
