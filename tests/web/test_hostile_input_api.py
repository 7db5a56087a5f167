"""Hostile input over HTTP: bodies that are not JSON, bytes that are not UTF-8, times without a
zone or past the year 9999, quantities that are not numbers, control characters and very long
strings. Each is a 4xx problem naming what is wrong, never a server error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_api_support import Api, Person, problem_of

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
