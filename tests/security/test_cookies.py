"""The session cookie set by ``ngo_kit.web`` sign-in: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``,
``Secure`` outside development or when the app says so; sign-out clears it and ends the session
on the server; the session token is never read from a URL, and no answer but the sign-in's own
carries it (the JSON body of sign-in is the documented bearer token for API clients)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from security_support import PASSWORD, Site, SiteFactory, cookie_flags, session_cookie

from ngo_kit.web import SESSION_COOKIE


def _sign_in(client: TestClient, site: Site, email: str) -> tuple[str, str]:
    """Sign in with ``client``; returns (the Set-Cookie value, the token in the body)."""
    res = client.post(site.url("registration/sign-in"), json={"email": email, "password": PASSWORD})
    assert res.status_code == 200, res.text
    [set_cookie] = res.headers.get_list("set-cookie")
    token: str = res.json()["token"]
    return set_cookie, token


@pytest.mark.parametrize(
    ("environment", "secure_cookies", "secure"),
    [
        ("development", None, False),
        ("development", True, True),
        ("test", None, True),
        ("test", False, False),
    ],
)
def test_the_session_cookie_is_http_only_lax_site_wide_and_secure_outside_development(
    site_factory: SiteFactory, environment: str, secure_cookies: bool | None, secure: bool
) -> None:
    site = site_factory(environment=environment, app_options={"secure_cookies": secure_cookies})
    person = site.join("ana")
    client = TestClient(site.client.app, base_url="https://testserver")
    set_cookie, token = _sign_in(client, site, person.email)
    morsel = session_cookie(set_cookie, SESSION_COOKIE)
    assert morsel.value == token
    assert morsel["path"] == "/"
    assert morsel["samesite"].lower() in ("lax", "strict")
    assert "httponly" in cookie_flags(set_cookie)
    assert ("secure" in cookie_flags(set_cookie)) is secure
    assert 0 < int(morsel["max-age"]) <= 30 * 24 * 3600  # the session's own lifetime


def test_sign_out_with_the_cookie_clears_it_and_ends_the_session_on_the_server(
    site: Site,
) -> None:
    person = site.join("bo")
    client = TestClient(site.client.app, base_url="https://testserver")
    _, token = _sign_in(client, site, person.email)
    assert client.get(site.url("registration/me")).status_code == 200
    thief = TestClient(site.client.app, base_url="https://testserver")  # a copy of the cookie
    thief.cookies.set(SESSION_COOKIE, token)
    assert thief.get(site.url("registration/me")).status_code == 200
    out = client.post(site.url("registration/sign-out"))
    assert out.status_code == 204, out.text
    [cleared] = out.headers.get_list("set-cookie")
    morsel = session_cookie(cleared, SESSION_COOKIE)
    assert morsel.value in ("", '""') and morsel["path"] == "/"
    assert int(morsel["max-age"] or 0) <= 0
    assert client.cookies.get(SESSION_COOKIE) is None
    # The old value, replayed from the copy, opens nothing.
    assert thief.get(site.url("registration/me")).status_code == 401
    bearer = site.client.get(
        site.url("registration/me"), headers={"Authorization": f"Bearer {token}"}
    )
    assert bearer.status_code == 401


def test_no_route_reads_a_session_token_from_the_url(site: Site) -> None:
    person = site.join("cai")
    spec = site.client.app.openapi()  # type: ignore[attr-defined]
    in_url = {
        (path, p["name"])
        for path, item in spec["paths"].items()
        for operation in item.values()
        for p in operation.get("parameters", [])
        if p["in"] in ("query", "path") and ("token" in p["name"] or "session" in p["name"])
    }
    # The only token in a URL is a certificate's, made to be printed as a public link and
    # checked by anyone: it signs in no one.
    assert in_url == {("/api/certificates/verify", "token")}
    checked = site.client.get("/api/certificates/verify", params={"token": person.token})
    assert checked.status_code == 400 and checked.json()["code"].startswith("token_")
    for name in ("token", "session", "access_token", SESSION_COOKIE):
        res = site.client.get(site.url("registration/me"), params={name: person.token})
        assert res.status_code == 401, name


def test_no_answer_but_sign_in_carries_the_session_token(site: Site) -> None:
    staff = site.join("dan", role="staff")
    person = site.join("eve")
    client = TestClient(site.client.app, base_url="https://testserver")
    set_cookie, token = _sign_in(client, site, person.email)
    assert token not in set_cookie.split(";", 1)[1]  # only as the cookie's value
    answers = [
        client.get(site.url("registration/me")),
        client.get(site.url("points/me")),
        client.get(site.url("volunteer/me/signups")),
        client.post(site.url("registration/me/email-verification")),
        client.get("/api/orgs"),
        client.get(site.url("registration/members")),  # refused: not a staff member
        site.client.get(site.url("registration/members"), headers=staff.auth),
        client.post(site.url("registration/sign-out")),
    ]
    for res in answers:
        assert res.status_code < 500, res.text
        assert token not in res.text, res.request.url
        assert all(token not in value for _, value in res.headers.multi_items()), res.request.url
        assert all(
            SESSION_COOKIE not in c or "max-age=0" in c.lower()
            for c in res.headers.get_list("set-cookie")
        ), res.request.url  # only sign-out touches the cookie, to clear it
