"""API fuzzing: schemathesis generates requests from the OpenAPI document of ``create_app(kit)``
with every built-in module, and of the example app relief_hub (``create_relief_hub(kit)``: the
same API composed with the bridge plugins, CSRF middleware and page error handler), and sends
them in-process (ASGI transport, no network).

Every operation must answer without a server error (no 5xx), with a documented status code,
content type and a body that matches its response schema. Requests carry an owner's session and
name a real organisation, so generated input reaches the services instead of stopping at 401 or
404. Bounded: a few examples per operation, so the whole run stays well under a minute.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from web_api_support import ORG, PASSWORD

# examples.relief_hub is imported from the repository (under --import-mode=importlib the root is
# not on sys.path by itself).
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[2]))

from examples.relief_hub.app import build_kit, create_relief_hub
from ngo_kit import SYSTEM, Kit
from ngo_kit.testing import TEST_SECRET, DatabaseProvider, MessageCatcher, settings_for_tests
from ngo_kit.web import create_app

EXAMPLES_PER_OPERATION = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _owner_token(kit: Kit) -> str:
    with kit.begin(org=ORG, actor=SYSTEM) as tx:
        user = tx.registration.register(
            email="owner@example.org", password=PASSWORD, display_name="Owner"
        )
        tx.tenancy.set_role(user.id, "owner")
        token: str = tx.registration.authenticate(
            email="owner@example.org", password=PASSWORD
        ).token
    return token


Target = tuple[Any, dict[str, str]]


def _serve(
    ngo_kit_databases: DatabaseProvider, make: Callable[[str], tuple[Kit, Any]]
) -> Iterator[Target]:
    """One app for the whole run (``make(database_url)`` -> kit and app) with the organisation
    ``rainbow``, and an owner's session headers. Cheap argon2 parameters keep generated sign-ups
    fast."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB", "1024")
        env.setenv("NGO_KIT_REGISTRATION_ARGON2_TIME_COST", "1")
        kit, app = make(ngo_kit_databases.empty_url())
        kit.upgrade()
        kit.create_organisation(ORG, "Rainbow Charity")
        headers = {"Authorization": f"Bearer {_owner_token(kit)}"}
        yield app, headers
        kit.dispose()


def _ngo_kit_app(url: str) -> tuple[Kit, Any]:
    kit = Kit(settings=settings_for_tests(url), plugins=[MessageCatcher()], autoload=False)
    return kit, create_app(kit)


def _relief_hub_app(url: str) -> tuple[Kit, Any]:
    kit = build_kit(url, environment="test", secret_keys=[TEST_SECRET])
    return kit, create_relief_hub(kit, deliver_messages=False)


@pytest.fixture(scope="module")
def fuzz_target(ngo_kit_databases: DatabaseProvider) -> Iterator[Target]:
    """``create_app`` over all built-in modules."""
    yield from _serve(ngo_kit_databases, _ngo_kit_app)


@pytest.fixture(scope="module")
def relief_hub_target(ngo_kit_databases: DatabaseProvider) -> Iterator[Target]:
    """relief_hub: all built-in modules and the bridge plugins."""
    yield from _serve(ngo_kit_databases, _relief_hub_app)


def _openapi(make: Callable[[str], tuple[Kit, Any]]) -> dict[str, Any]:
    """The OpenAPI document of an app (it needs no database)."""
    kit, app = make("sqlite://")
    try:
        document: dict[str, Any] = app.openapi()
        return document
    finally:
        kit.dispose()


schema = schemathesis.openapi.from_dict(_openapi(_ngo_kit_app))
# relief_hub serves the same operations: their coverage phase (deterministic boundary values, the
# costly part) runs against create_app above; here random examples meet the composition (bridge
# plugins, CSRF middleware, the app's error handler).
relief_hub_schema = schemathesis.openapi.from_dict(
    _openapi(_relief_hub_app),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
)


bounded = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def _call_and_validate(case: Case[Any], target: Target) -> None:
    app, owner_headers = target
    if "{org}" in case.path:
        case.path_parameters = {**(case.path_parameters or {}), "org": ORG}
    case.call_and_validate(app=app, headers=owner_headers, checks=CHECKS)


@schema.parametrize()
@bounded
def test_generated_requests_never_break_the_api(case: Case[Any], fuzz_target: Target) -> None:
    _call_and_validate(case, fuzz_target)


@relief_hub_schema.parametrize()
@bounded
def test_generated_requests_never_break_relief_hub(
    case: Case[Any], relief_hub_target: Target
) -> None:
    _call_and_validate(case, relief_hub_target)
