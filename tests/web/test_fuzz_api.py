"""API fuzzing: schemathesis generates requests from the OpenAPI document of ``create_app(kit)``
with every built-in module, and sends them in-process (ASGI transport, no network).

Every operation must answer without a server error (no 5xx), with a documented status code,
content type and a body that matches its response schema. Requests carry an owner's session and
name a real organisation, so generated input reaches the services instead of stopping at 401 or
404. Bounded: a few examples per operation, so the whole run stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from web_api_support import ORG, PASSWORD

from ngo_kit import SYSTEM, Kit
from ngo_kit.testing import DatabaseProvider, MessageCatcher, settings_for_tests
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


@pytest.fixture(scope="module")
def fuzz_target(ngo_kit_databases: DatabaseProvider) -> Iterator[tuple[Any, dict[str, str]]]:
    """One app for the whole run, over all built-in modules, with the organisation ``rainbow``,
    and an owner's session headers. Cheap argon2 parameters keep generated sign-ups fast."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB", "1024")
        env.setenv("NGO_KIT_REGISTRATION_ARGON2_TIME_COST", "1")
        kit = Kit(
            settings=settings_for_tests(ngo_kit_databases.empty_url()),
            plugins=[MessageCatcher()],
            autoload=False,
        )
        kit.upgrade()
        kit.create_organisation(ORG, "Rainbow Charity")
        headers = {"Authorization": f"Bearer {_owner_token(kit)}"}
        yield create_app(kit), headers
        kit.dispose()


def _openapi() -> dict[str, Any]:
    """The OpenAPI document of an app with every built-in module (it needs no database)."""
    kit = Kit(settings=settings_for_tests("sqlite://"), autoload=False)
    try:
        return create_app(kit).openapi()
    finally:
        kit.dispose()


schema = schemathesis.openapi.from_dict(_openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_generated_requests_never_break_the_api(
    case: Case[Any], fuzz_target: tuple[Any, dict[str, str]]
) -> None:
    app, owner_headers = fuzz_target
    if "{org}" in case.path:
        case.path_parameters = {**(case.path_parameters or {}), "org": ORG}
    case.call_and_validate(app=app, headers=owner_headers, checks=CHECKS)
