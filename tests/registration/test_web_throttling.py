"""The registration routes under throttling: each route that sends a code or link, and sign-in,
answers 429 with ``Retry-After`` once a budget is spent (unknown addresses alike); changing the
password over HTTP keeps the session it was made from and ends the others."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from ngo_kit import Kit
from ngo_kit.modules.registration.testing import PASSWORD
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory
from ngo_kit.web import create_app

LIMIT = 5
BASE = "/api/orgs/rainbow/registration"


@pytest.fixture
def client(rkit: Kit, rorg: OrgRead) -> TestClient:
    """The app over the registration module (organisation ``rainbow``)."""
    return TestClient(create_app(rkit))


def _sign_up(client: TestClient, email: str | None = None, phone: str | None = None) -> str:
    """Register and sign in; the bearer token."""
    credentials: dict[str, Any] = {"password": PASSWORD}
    credentials.update({k: v for k, v in (("email", email), ("phone", phone)) if v})
    res = client.post(f"{BASE}/register", json={**credentials, "display_name": "Someone"})
    assert res.status_code == 201, res.text
    signed = client.post(f"{BASE}/sign-in", json=credentials)
    assert signed.status_code == 200, signed.text
    client.cookies.clear()
    return str(signed.json()["token"])


def _throttled(res: Any) -> int:
    """The problem of a throttled answer; its ``Retry-After`` in seconds."""
    assert res.status_code == 429, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    assert res.json()["code"] in ("too_many_requests", "too_many_attempts")
    wait = int(res.headers["Retry-After"])
    assert 0 < wait <= 3600
    return wait


@pytest.mark.parametrize("email", ["mei@example.org", "nobody@example.org"])
def test_reset_requests_get_429_with_retry_after_for_any_address(
    client: TestClient, email: str
) -> None:
    _sign_up(client, email="mei@example.org")
    for _ in range(LIMIT):
        res = client.post(f"{BASE}/password-reset/request", json={"email": email})
        assert res.status_code == 202, res.text
    res = client.post(f"{BASE}/password-reset/request", json={"email": email})
    _throttled(res)
    assert res.json()["code"] == "too_many_requests"


@pytest.mark.parametrize("phone", ["13800138000", "13900139000"])
def test_sign_in_code_requests_get_429_with_retry_after_for_any_number(
    client: TestClient, phone: str
) -> None:
    _sign_up(client, phone="13800138000")
    for _ in range(LIMIT):
        res = client.post(f"{BASE}/sign-in/code", json={"phone": phone})
        assert res.status_code == 202, res.text
        assert res.content == b""
    _throttled(client.post(f"{BASE}/sign-in/code", json={"phone": phone}))


def test_verification_resends_get_429_with_retry_after(client: TestClient) -> None:
    token = _sign_up(client, email="mei@example.org", phone="13800138000")
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert client.post(f"{BASE}/me/email-verification", headers=auth).status_code == 202
    for _ in range(2):
        assert client.post(f"{BASE}/me/phone-code", headers=auth).status_code == 202
    _throttled(client.post(f"{BASE}/me/email-verification", headers=auth))
    _throttled(client.post(f"{BASE}/me/phone-code", headers=auth))


def test_the_client_address_is_a_key_of_its_own(
    kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NGO_KIT_REGISTRATION_CLIENT_SEND_LIMIT", "2")
    kit = kit_factory(modules=["registration"])
    kit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})
    client = TestClient(create_app(kit))
    for n in range(2):
        res = client.post(f"{BASE}/password-reset/request", json={"email": f"p{n}@example.org"})
        assert res.status_code == 202
    _throttled(client.post(f"{BASE}/sign-in/code", json={"phone": "13800138000"}))


def test_sign_in_lockout_gets_429_with_retry_after(client: TestClient) -> None:
    _sign_up(client, email="mei@example.org")
    wrong = {"email": "mei@example.org", "password": "not-the-password-1"}
    for _ in range(LIMIT):
        assert client.post(f"{BASE}/sign-in", json=wrong).status_code == 401
    res = client.post(f"{BASE}/sign-in", json={"email": "mei@example.org", "password": PASSWORD})
    assert _throttled(res) <= 900  # the lockout lasts 15 minutes
    assert res.json()["code"] == "too_many_attempts"


def test_changing_the_password_keeps_this_session_and_ends_the_others(
    client: TestClient,
) -> None:
    here = _sign_up(client, email="mei@example.org")
    elsewhere = client.post(
        f"{BASE}/sign-in", json={"email": "mei@example.org", "password": PASSWORD}
    ).json()["token"]
    client.cookies.clear()
    res = client.post(
        f"{BASE}/me/password",
        json={"current_password": PASSWORD, "new_password": "a-brand-new-secret-8"},
        headers={"Authorization": f"Bearer {here}"},
    )
    assert res.status_code == 204, res.text
    me = client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {here}"})
    assert me.status_code == 200, me.text
    gone = client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {elsewhere}"})
    assert gone.status_code == 401
