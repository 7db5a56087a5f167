"""ngo_kit.web.csrf: signed form tokens bound to the browser's session or pre-session cookie."""

from __future__ import annotations

import re

import pytest
from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.testclient import TestClient

from ngo_kit import Kit
from ngo_kit.testing import KitFactory
from ngo_kit.tokens import tokens_for
from ngo_kit.web import SESSION_COOKIE, create_app
from ngo_kit.web.csrf import CSRF_COOKIE, PURPOSE, csrf_field, install_csrf, require_csrf

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def csrf_kit(kit_factory: KitFactory) -> Kit:
    return kit_factory(modules=["registration"])


def _client(kit: Kit, *, secure: bool = True) -> TestClient:
    app = create_app(kit, secure_cookies=secure)
    install_csrf(app)

    @app.get("/form", response_class=HTMLResponse)
    def form(request: Request) -> str:
        return f'<form method="post">{csrf_field(request)}</form>'

    @app.post("/form", dependencies=[Depends(require_csrf)], response_class=PlainTextResponse)
    def submit(name: str = Form("")) -> str:
        return f"saved {name}"

    scheme = "https" if secure else "http"
    return TestClient(app, base_url=f"{scheme}://testserver")


def _token(client: TestClient) -> str:
    found = _TOKEN.search(client.get("/form").text)
    assert found is not None
    return found.group(1)


def test_a_form_with_its_token_passes(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    answer = client.post("/form", data={"csrf_token": _token(client), "name": "Li"})
    assert answer.status_code == 200 and answer.text == "saved Li"


def test_the_first_page_sets_an_http_only_lax_secure_pre_session_cookie(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    cookie = client.get("/form").headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "set-cookie" not in client.get("/form").headers  # kept, not minted again
    assert "Secure" not in _client(csrf_kit, secure=False).get("/form").headers["set-cookie"]


def test_a_missing_forged_or_foreign_token_is_a_403_problem(csrf_kit: Kit) -> None:
    client, other = _client(csrf_kit), _client(csrf_kit)
    token = _token(client)
    for data in ({}, {"csrf_token": token[:-3] + "abc"}, {"csrf_token": _token(other)}):
        answer = client.post("/form", data={"name": "x", **data})
        assert answer.status_code == 403
        assert answer.json()["code"] == "csrf_refused"


def test_the_refusal_speaks_the_requests_language(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    answer = client.post("/form", data={}, headers={"Accept-Language": "zh-CN"})
    assert "表单已过期" in answer.json()["detail"]


def test_a_token_for_another_purpose_is_refused(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    _token(client)
    other = tokens_for(csrf_kit).sign("registration.verify-email", {"b": "x"})
    assert client.post("/form", data={"csrf_token": other}).status_code == 403


def test_signing_in_binds_new_tokens_to_the_session(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    before = _token(client)
    client.cookies.set(SESSION_COOKIE, "a-session-token")
    assert client.post("/form", data={"csrf_token": before}).status_code == 403
    assert client.post("/form", data={"csrf_token": _token(client)}).status_code == 200


def test_the_header_carries_the_token_too_and_bearer_calls_need_none(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    token = _token(client)
    assert client.post("/form", headers={"X-CSRF-Token": token}).status_code == 200
    bearer = client.post("/form", headers={"Authorization": "Bearer abc"})
    assert bearer.status_code == 200


def test_tokens_are_signed_for_the_csrf_purpose(csrf_kit: Kit) -> None:
    client = _client(csrf_kit)
    data = tokens_for(csrf_kit).load(PURPOSE, _token(client), max_age=60)
    assert set(data) == {"b"}
