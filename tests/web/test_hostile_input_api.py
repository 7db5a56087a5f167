"""Hostile input over HTTP: bodies that are not JSON, bytes that are not UTF-8, times without a
zone or past the year 9999, quantities that are not numbers, control characters and very long
strings. Each is a 4xx problem naming what is wrong, never a server error. Every field of every
route's body, found from the app, gets the values its kind must refuse (``ngo_kit.hostile_input``);
the well-formed requests that once were 500s are a 422 and write nothing."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_api_support import ORG, Api, Person, problem_of

from ngo_kit import Kit
from ngo_kit.hostile_input import Kind, hostile_fields, hostile_values
from ngo_kit.schemas import InputModel
from ngo_kit.testing import settings_for_tests
from ngo_kit.web import create_app


@pytest.fixture
def staff(api: Api) -> Person:
    """An administrator with a catalogue item and a location."""
    admin = api.join("root", role="admin")
    api.client.post(
        api.url("inventory/items"), json={"code": "rice", "name": "Rice"}, headers=admin.auth
    )
    api.client.post(
        api.url("inventory/locations"), json={"code": "main", "name": "Main"}, headers=admin.auth
    )
    return admin


@pytest.fixture
def strict(api: Api) -> TestClient:
    """A client that reports a server error as a 500 response instead of raising it."""
    return TestClient(create_app(api.kit), raise_server_exceptions=False)


def test_a_body_that_is_not_utf8_or_not_json_is_a_422_problem(api: Api, staff: Person) -> None:
    for raw in (b"\xdb\x9b\x07\x16\xff\xfe", b"{not json", b""):
        res = api.client.post(
            api.url("inventory/receipts"),
            content=raw,
            headers={**staff.auth, "Content-Type": "application/json"},
        )
        problem_of(res, 422, "validation_failed")


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("inventory/moves", "since"),
        ("inventory/moves", "until"),
        ("volunteer/shifts", "starts_after"),
    ],
)
@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2026-05-01T10:00:00", "timezone_aware"),
        ("9999-12-31T23:59:59-12:00", "datetime_out_of_range"),
        ("0001-01-01T00:00:00+14:00", "datetime_out_of_range"),
    ],
)
def test_query_times_need_a_zone_and_a_real_year(
    api: Api, staff: Person, strict: TestClient, path: str, param: str, value: str, rule: str
) -> None:
    res = strict.get(api.url(path), params={param: value}, headers=staff.auth)
    body = problem_of(res, 422, "validation_failed")
    assert (body["field"], body["rule"]) == (param, rule)


@pytest.mark.parametrize(
    "quantity", ["NaN", "Infinity", "-1", "0", "1e30", "0.00001", "sNaN", "one", True, 0.5]
)
def test_quantities_that_are_not_exact_positive_numbers_are_refused(
    api: Api, staff: Person, quantity: Any
) -> None:
    res = api.client.post(
        api.url("inventory/receipts"),
        json={"item": "rice", "quantity": quantity, "to": "main"},
        headers=staff.auth,
    )
    assert problem_of(res, 422, "validation_failed")["field"] == "quantity"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("points/awards", {"points": 10, "reason": "line\nbreak"}),
        ("points/awards", {"points": 10**12}),
        ("points/awards", {"points": 10, "reason": "x" * 100_000}),
        ("inventory/receipts", {"item": "rice", "quantity": "1", "to": "main", "lot": "a\x00b"}),
        ("registration/register", {"email": "a@example.org", "display_name": "\u202e\x07"}),
        ("registration/register", {"email": "a" * 400 + "@example.org", "display_name": "A"}),
        ("volunteer/activities", {"title": "\x1b[31mred"}),
    ],
)
def test_control_characters_huge_numbers_and_long_strings_are_422(
    api: Api, staff: Person, strict: TestClient, path: str, body: dict[str, Any]
) -> None:
    if path == "points/awards":
        body = {"member_id": str(staff.id), **body}
    res = strict.post(api.url(path), json=body, headers=staff.auth)
    problem_of(res, 422, "validation_failed")


def test_a_hostile_session_token_is_simply_no_session(api: Api) -> None:
    for token in ("\x7f" * 5, "x" * 10_000, "' OR 1=1 --", "\u4e2d\u6587"):
        res = api.client.get(
            api.url("registration/me"), headers={b"Authorization": f"Bearer {token}".encode()}
        )
        problem_of(res, 401, "authentication_required")


# --- generated: every body field of every route, and the reported 500s ----------------------


def _input_models() -> dict[str, type[InputModel]]:
    """Every input model by the names OpenAPI may give it (plain, or module-qualified)."""
    found: dict[str, type[InputModel]] = {}
    todo = list(InputModel.__subclasses__())
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        found.setdefault(model.__name__, model)
        found[f"{model.__module__}.{model.__qualname__}".replace(".", "__")] = model
    return found


def _body_routes() -> list[tuple[str, str, type[InputModel]]]:
    """Each route whose JSON body is an input model, from the app's OpenAPI document."""
    app = create_app(Kit(settings=settings_for_tests("sqlite://"), autoload=False))
    models = _input_models()
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            model = models.get(ref.rsplit("/", 1)[-1])
            if model is not None:
                found.append((method.upper(), path, model))
    return found


ROUTES = _body_routes()
#: Passwords are hashed, never stored or shown; every character is allowed in them.
NOT_ATTACKED = {"password", "current_password", "new_password"}
FIELD_CASES = [
    (method, path, key, kind)
    for method, path, model in ROUTES
    for key, kind in hostile_fields(model)
    if key not in NOT_ATTACKED
]


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))


def test_the_routes_with_bodies_are_found() -> None:
    paths = {path for _, path, _ in ROUTES}
    assert {"/api/orgs/{org}/points/awards", "/api/orgs/{org}/inventory/receipts"} <= paths
    assert {kind for *_, kind in FIELD_CASES} >= {"text", "name", "url", "integer", "instant"}


@pytest.mark.parametrize(
    ("method", "path", "key", "kind"),
    FIELD_CASES,
    ids=[f"{m} {p.removeprefix('/api/orgs/{org}/')}.{k}:{kind}" for m, p, k, kind in FIELD_CASES],
)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_hostile_value_in_any_body_field_is_a_422_naming_it(
    api: Api,
    staff: Person,
    strict: TestClient,
    method: str,
    path: str,
    key: str,
    kind: Kind,
    data: st.DataObject,
) -> None:
    value = data.draw(hostile_values(kind), label=key)
    url = re.sub(r"\{[^}]+\}", lambda m: ORG if m.group(0) == "{org}" else str(uuid.uuid4()), path)
    res = strict.request(
        method,
        url,
        content=_json({key: value}),
        headers={**staff.auth, "Content-Type": "application/json"},
    )
    body = problem_of(res, 422, "validation_failed")
    fields = {body["field"], *(e["field"] for e in body.get("errors", ()))}
    assert any(f.split(".")[0] == key for f in fields), (key, fields)


def _rows(api: Api) -> dict[str, int]:
    with api.kit.engine.connect() as conn:
        return {
            name: conn.scalar(sa.select(sa.func.count()).select_from(sa.table(name))) or 0
            for name in api.kit.table_names()
        }


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("points/rewards", {"code": "mug", "name": "Mug", "price": 5, "stock": 10**20}, "stock"),
        (
            "points/rewards",
            {"code": "mug", "name": "Mug", "price": 5, "ends_at": "9999-12-31T23:59:59+00:00"},
            "ends_at",
        ),
        (
            "points/rewards",
            {"code": "mug", "name": "Mug", "price": 5, "image_url": "javascript:alert(1)"},
            "image_url",
        ),
        ("points/awards", {"points": True}, "points"),
        (
            "inventory/receipts",
            {"item": "rice", "quantity": "1", "to": "main", "notes": "a\x00"},
            "notes",
        ),
    ],
)
def test_well_formed_json_the_services_cannot_store_is_a_422_and_nothing_is_written(
    api: Api, staff: Person, strict: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    if path == "points/awards":
        body = {"member_id": str(staff.id), **body}
    before = _rows(api)
    res = strict.post(api.url(path), json=body, headers=staff.auth)
    assert problem_of(res, 422, "validation_failed")["field"] == field
    assert _rows(api) == before


def test_a_shift_in_the_year_9999_is_a_422(api: Api, staff: Person, strict: TestClient) -> None:
    activity = strict.post(
        api.url("volunteer/activities"), json={"title": "Sorting"}, headers=staff.auth
    ).json()
    before = _rows(api)
    res = strict.post(
        api.url("volunteer/shifts"),
        json={
            "activity_id": activity["id"],
            "starts_at": "9999-12-31T20:00:00+00:00",
            "ends_at": "9999-12-31T23:00:00+00:00",
            "capacity": 2,
        },
        headers=staff.auth,
    )
    assert problem_of(res, 422, "validation_failed")["field"] == "starts_at"
    assert _rows(api) == before


def test_a_password_reset_asked_with_both_email_and_phone_is_not_a_server_error(
    api: Api, staff: Person, strict: TestClient
) -> None:
    res = strict.post(
        api.url("registration/password-reset/request"),
        json={"email": staff.email, "phone": "+8613800138000"},
    )
    assert res.status_code < 500, res.text
