"""Errors and headers over HTTP: a problem never carries a stack trace, SQL, a table or constraint
name, the driver's message or the values the database refused; server errors (500, 503) are
generic; hostile input to every route is a 4xx problem; every answer says ``nosniff`` and is
not to be stored by caches.

Database errors are forced for real: a plugin's routes break a unique constraint with someone's
email, run SQL naming a missing column and a missing table, and a kit whose database cannot be
reached answers every route."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from security_support import LEAK_MARKERS, ORG, PASSWORD, Person, Site, SiteFactory

from ngo_kit import ConfigurationError, Kit, hookimpl
from ngo_kit.modules.registration.models import Account
from ngo_kit.plugins import Registrar
from ngo_kit.testing import settings_for_tests
from ngo_kit.web import PROBLEM_JSON, RequestContext, Routes, create_app, request_context

LEAKED_EMAIL = "leak.me@example.org"


class Breakage:
    """A plugin whose routes hit real database errors, and one that fails in plain Python."""

    ngo_kit_plugin_name = "tests.security.breakage"

    @hookimpl
    def ngo_kit_register_routes(self, register: Registrar[Routes], kit: Kit) -> None:
        router = APIRouter()

        @router.post("/duplicate")
        def duplicate(ctx: RequestContext = Depends(request_context)) -> None:
            with ctx.begin() as tx:  # a unique email twice: the driver quotes it on MariaDB
                for _ in range(2):
                    tx.connection.execute(
                        sa.insert(Account).values(email=LEAKED_EMAIL, display_name="Leak Me")
                    )

        @router.get("/missing-column")
        def missing_column(ctx: RequestContext = Depends(request_context)) -> None:
            with ctx.begin() as tx:
                tx.connection.execute(sa.text("SELECT no_such_column FROM registration_account"))

        @router.get("/missing-table")
        def missing_table(ctx: RequestContext = Depends(request_context)) -> None:
            with ctx.begin() as tx:
                tx.connection.execute(sa.text("SELECT id FROM breakage_missing_table"))

        @router.post("/lost-race")
        def lost_race(ctx: RequestContext = Depends(request_context)) -> None:
            with ctx.begin():  # what PyMySQL raises when InnoDB picks this unit of work
                driver = Exception(1213, "Deadlock found when trying to get lock; try restarting")
                raise sa.exc.OperationalError("UPDATE points_account SET ...", {}, driver)

        @router.get("/misconfigured")
        def misconfigured() -> None:
            raise ConfigurationError(
                "breakage.E001", "the API key 'k-123' is wrong for {host}", host="db.internal"
            )

        @router.get("/crash")
        def crash() -> None:
            raise RuntimeError(f"internal state of {LEAKED_EMAIL}: SELECT * FROM secrets")

        register(Routes("breakage", router))


@pytest.fixture
def broken(site_factory: SiteFactory) -> Site:
    """The app with the breakage plugin; server errors answer instead of being raised."""
    site = site_factory(plugins=(Breakage(),))
    site.client = TestClient(create_app(site.kit), raise_server_exceptions=False)
    return site


def assert_no_leak(res: Any, *fields: str) -> dict[str, Any]:
    """``res`` is a problem+json with no internal detail and no fields but the problem's own
    and ``fields``; returns its body."""
    assert res.headers["content-type"] == PROBLEM_JSON, res.text
    assert not LEAK_MARKERS.search(res.text), res.text
    assert LEAKED_EMAIL not in res.text
    body: dict[str, Any] = res.json()
    assert set(body) <= {"type", "title", "status", "detail", "code", "instance", *fields}, body
    return body


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("post", "duplicate", 409, "conflict"),
        ("get", "missing-table", 500, "configuration_error"),
        ("get", "misconfigured", 500, "configuration_error"),
        ("get", "crash", 500, "ngo_kit.error"),
    ],
)
def test_database_and_server_errors_reach_the_client_as_a_generic_problem(
    broken: Site, method: str, path: str, status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        res = getattr(broken.client, method)(broken.url(f"breakage/{path}"))
    assert res.status_code == status, res.text
    body = assert_no_leak(res)
    assert body["code"] == code
    assert "k-123" not in res.text and "db.internal" not in res.text
    zh = getattr(broken.client, method)(
        broken.url(f"breakage/{path}"), headers={"Accept-Language": "zh-CN"}
    )
    assert zh.json()["detail"] != body["detail"]  # the generic message is translated too
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert LEAKED_EMAIL not in logged  # the server log names what failed, not the values


def test_a_lost_race_keeps_its_own_words_which_quote_no_driver(broken: Site) -> None:
    res = broken.client.post(broken.url("breakage/lost-race"))
    assert res.status_code == 409, res.text
    body = assert_no_leak(res, "reason")
    assert (body["code"], body["reason"]) == ("transaction_conflict", "deadlock")
    assert "try again" in body["detail"] and "Deadlock found" not in res.text


def test_a_statement_the_database_refuses_is_generic_too(broken: Site) -> None:
    res = broken.client.get(broken.url("breakage/missing-column"))
    assert res.status_code in (409, 500), res.text  # SQLite: refused; PostgreSQL: missing
    assert_no_leak(res)
    assert "no_such_column" not in res.text


def test_an_unreachable_database_is_a_generic_503_on_every_kind_of_route() -> None:
    down = Kit(
        settings=settings_for_tests("postgresql+psycopg://nobody@127.0.0.1:1/gone"),
        autoload=False,
    )
    client = TestClient(create_app(down), raise_server_exceptions=False)
    try:
        for method, path, body in [
            ("get", f"/api/orgs/{ORG}", None),
            ("post", f"/api/orgs/{ORG}/registration/sign-in", {"email": "a@example.org", "password": PASSWORD}),
            ("get", f"/api/orgs/{ORG}/points/me", None),
        ]:  # fmt: skip
            headers = {"Authorization": "Bearer some-session"}
            res = getattr(client, method)(path, headers=headers, **({"json": body} if body else {}))
            assert res.status_code == 503, res.text
            assert assert_no_leak(res)["code"] == "database_unavailable"
            assert "127.0.0.1" not in res.text and "nobody" not in res.text
    finally:
        down.dispose()


# --- hostile input to every route ----------------------------------------------------------

HOSTILE = [
    "' OR 1=1 --",
    '"; DROP TABLE people; --',
    "../../../../etc/passwd",
    "<script>alert(1)</script>",
    "%00\x00",
    "\u202e\u4e2d\u6587" * 50,
    "9" * 400,
    "x" * 5000,
]


#: FastAPI's own answers when no route matches (a hostile path that decodes to other segments).
ROUTING_ANSWERS = [{"detail": "Not Found"}, {"detail": "Method Not Allowed"}]


def _operations(app: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation of the OpenAPI document: method, path, and the operation."""
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _body_fields(app_schema: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return []
    ref = content["schema"].get("$ref", "")
    schema = app_schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    return list(schema.get("properties", {}))


def test_hostile_values_in_every_path_query_and_body_field_are_4xx_problems(site: Site) -> None:
    owner = site.join("owner", role="owner")
    app = site.client.app
    spec = app.openapi()  # type: ignore[attr-defined]
    client = TestClient(app, raise_server_exceptions=False)
    sent = 0
    for method, path, operation in _operations(app):
        params = operation.get("parameters", [])
        fields = _body_fields(spec, operation)
        for value in HOSTILE:
            url = path
            for p in params:
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", quote(value, safe=""))
            query = {p["name"]: value for p in params if p["in"] == "query"}
            kwargs: dict[str, Any] = {"params": query, "headers": owner.auth}
            if method in ("post", "put", "patch"):
                kwargs["json"] = dict.fromkeys(fields, value)
            res = client.request(method.upper(), url, **kwargs)
            sent += 1
            assert res.status_code < 500, (method, url, res.status_code, res.text[:300])
            if res.status_code >= 400 and res.json() not in ROUTING_ANSWERS:
                assert res.headers["content-type"] == PROBLEM_JSON, (method, url, res.text[:300])
            assert not LEAK_MARKERS.search(res.text), (method, url, res.text[:300])
    assert sent > 300  # every operation was driven


# --- headers -------------------------------------------------------------------------------


def test_every_answer_says_nosniff_and_no_store(site: Site) -> None:
    person: Person = site.join("nia")
    answers = [
        site.client.get("/api/health"),
        site.client.post(
            site.url("registration/sign-in"), json={"email": person.email, "password": PASSWORD}
        ),
        site.client.get(site.url("registration/me"), headers=person.auth),
        site.client.get(site.url("registration/me")),  # a 401 problem
        site.client.get("/openapi.json"),
    ]
    for res in answers:
        assert res.headers["x-content-type-options"] == "nosniff", res.request.url
        assert res.headers["cache-control"] == "no-store", res.request.url


def _refuses_framing_and_inline_script(res: Any) -> None:
    policy = {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1:]
        for part in res.headers["content-security-policy"].split(";")
    }
    assert policy["frame-ancestors"] == ["'none'"], res.request.url
    assert res.headers["x-frame-options"] == "DENY", res.request.url
    assert res.headers["referrer-policy"] == "no-referrer", res.request.url
    scripts = " ".join(policy.get("script-src") or policy["default-src"])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, res.request.url


def test_every_answer_refuses_framing_and_inline_script(broken: Site) -> None:
    site = broken
    person: Person = site.join("ona")
    answers = [
        site.client.get("/api/health"),
        site.client.get(site.url("registration/me"), headers=person.auth),
        site.client.get(site.url("registration/me")),  # a 401 problem
        site.client.get("/api/no-such-route"),  # FastAPI's own 404
        site.client.post(site.url("registration/sign-in"), json={"email": 1}),  # a 422 problem
        site.client.get("/openapi.json"),
        site.client.get(site.url("breakage/crash")),  # an unexpected exception's 500
    ]
    for res in answers:
        _refuses_framing_and_inline_script(res)
    assert {r.status_code for r in answers} == {200, 401, 404, 422, 500}


def test_the_interactive_api_docs_run_only_their_own_pinned_scripts(site: Site) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        res = site.client.get(path)
        assert res.status_code == 200 and "<script" in res.text, path
        _refuses_framing_and_inline_script(res)
        scripts = res.headers["content-security-policy"].split("script-src ", 1)[1].split(";")[0]
        pinned = {
            "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
            for code in re.findall(r"<script>(.*?)</script>", res.text, re.DOTALL)
        }
        # each inline script of the page by its hash, the CDN's bundles, and nothing else
        assert set(scripts.split()) == pinned | {"https://cdn.jsdelivr.net"}, (path, scripts)
