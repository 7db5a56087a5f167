"""The web layer: routes contributed by plugins, problem details, locales, sessions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from ngo_kit import SYSTEM, InsufficientStock, Kit, hookimpl
from ngo_kit.plugins import Registrar
from ngo_kit.testing import KitFactory
from ngo_kit.web import ORG_HEADER, RequestContext, Routes, create_app, request_context

ALICE = uuid.uuid4()


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=20)
    count: int = Field(ge=1)


class NotesPlugin:
    """A plugin with a router, and a session decision that knows one token."""

    ngo_kit_plugin_name = "notes-web"

    @hookimpl
    def ngo_kit_register_routes(self, register: Registrar[Routes], kit: Kit) -> None:
        router = APIRouter()

        @router.post("/notes", status_code=201)
        def add_note(
            body: NoteIn, ctx: RequestContext = Depends(request_context)
        ) -> dict[str, Any]:
            actor = ctx.require_actor()
            with ctx.begin() as tx:
                tx.require("members.view")
                tx.audit("note.added", "note", body.count, body.text)
            return {"by": str(actor), "org": ctx.org}

        @router.get("/stock")
        def stock(ctx: RequestContext = Depends(request_context)) -> dict[str, str]:
            with ctx.begin():
                raise InsufficientStock(requested="5", available="2")

        register(Routes("notes", router))

    @hookimpl
    def ngo_kit_session_actor(self, kit: Kit, token: str) -> uuid.UUID | None:
        return ALICE if token == "alice-token" else None


@pytest.fixture
def client(kit_factory: KitFactory) -> TestClient:
    kit = kit_factory(modules=[], plugins=[NotesPlugin()])
    org = kit.create_organisation("rainbow", "Rainbow", owner=ALICE)
    kit.create_organisation("other", "Other")
    assert org.slug == "rainbow"
    return TestClient(create_app(kit))


def test_plugin_routes_are_mounted_under_the_organisation(client: TestClient) -> None:
    res = client.post(
        "/api/orgs/rainbow/notes/notes",
        json={"text": "hi", "count": 1},
        headers={"Authorization": "Bearer alice-token"},
    )
    assert res.status_code == 201, res.text
    assert res.json() == {"by": str(ALICE), "org": "rainbow"}


def test_no_session_is_a_401_problem_in_the_requested_language(client: TestClient) -> None:
    res = client.post(
        "/api/orgs/rainbow/notes/notes",
        json={"text": "hi", "count": 1},
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
    )
    assert res.status_code == 401
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json()["code"] == "authentication_required"
    assert res.json()["detail"] == "请先登录。"


def test_another_organisations_member_is_refused(client: TestClient) -> None:
    res = client.post(
        "/api/orgs/other/notes/notes",
        json={"text": "hi", "count": 1},
        headers={"Authorization": "Bearer alice-token"},
    )
    assert res.status_code == 404  # not a member there: the organisation is not shown
    assert res.json()["detail"] == "Organisation other was not found."


def test_unknown_organisation_is_404(client: TestClient) -> None:
    res = client.post(
        "/api/orgs/nowhere/notes/notes",
        json={"text": "hi", "count": 1},
        headers={"Authorization": "Bearer alice-token"},
    )
    assert res.status_code == 404
    assert res.json()["detail"] == "Organisation nowhere was not found."


def test_bad_body_names_the_field_and_rule(client: TestClient) -> None:
    res = client.post(
        "/api/orgs/rainbow/notes/notes",
        json={"text": "", "count": 0},
        headers={"Authorization": "Bearer alice-token", "Accept-Language": "zh"},
    )
    assert res.status_code == 422
    body = res.json()
    assert (body["field"], body["rule"]) == ("text", "string_too_short")
    assert {(e["field"], e["rule"]) for e in body["errors"]} == {
        ("text", "string_too_short"),
        ("count", "greater_than_equal"),
    }
    assert "至少需要 1 个字符" in body["detail"]


def test_conflicts_are_409_with_their_code(client: TestClient) -> None:
    res = client.get("/api/orgs/rainbow/notes/stock")
    assert res.status_code == 409
    assert res.json()["code"] == "insufficient_stock"
    assert res.json()["type"].endswith("/insufficient_stock")


def test_core_routes_and_openapi(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    assert client.get("/api/orgs/rainbow").json()["name"] == "Rainbow"
    listed = client.get("/api/orgs", headers={"Authorization": "Bearer alice-token"}).json()
    assert [o["slug"] for o in listed] == ["rainbow"]
    spec = client.get("/openapi.json").json()
    assert "/api/orgs/{org}/notes/notes" in spec["paths"]


def test_organisation_can_come_from_a_header(kit_factory: KitFactory) -> None:
    class HeaderRoutes:
        ngo_kit_plugin_name = "header-routes"

        @hookimpl
        def ngo_kit_register_routes(self, register: Registrar[Routes], kit: Kit) -> None:
            router = APIRouter()

            @router.get("/whoami")
            def whoami(ctx: RequestContext = Depends(request_context)) -> dict[str, str | None]:
                with ctx.begin() as tx:
                    return {"org": tx.org.slug if tx.org else None}

            register(Routes("hdr", router, org_scoped=False))

    kit = kit_factory(modules=[], plugins=[HeaderRoutes()])
    kit.create_organisation("rainbow", "Rainbow")
    client = TestClient(create_app(kit))
    assert client.get("/api/hdr/whoami", headers={ORG_HEADER: "rainbow"}).json() == {
        "org": "rainbow"
    }
    assert client.get("/api/hdr/whoami").json() == {"org": None}
    with kit.begin(actor=SYSTEM) as tx:
        assert len(tx.tenancy.list_organisations()) == 1


def test_a_signed_in_account_sees_only_organisations_it_is_a_member_of(
    kit_factory: KitFactory,
) -> None:
    class Reads:
        ngo_kit_plugin_name = "reads"

        @hookimpl
        def ngo_kit_register_routes(self, register: Registrar[Routes], kit: Kit) -> None:
            router = APIRouter()

            @router.get("/board")
            def board(ctx: RequestContext = Depends(request_context)) -> dict[str, str]:
                ctx.require_actor()
                with ctx.begin() as tx:  # no permission check: members may read it
                    return {"org": tx.require_org().slug}

            register(Routes("reads", router))

        @hookimpl
        def ngo_kit_session_actor(self, kit: Kit, token: str) -> uuid.UUID | None:
            return ALICE if token == "alice-token" else None

    kit = kit_factory(modules=[], plugins=[Reads()])
    kit.create_organisation("mine", "Mine", owner=ALICE)
    kit.create_organisation("theirs", "Theirs")
    client = TestClient(create_app(kit))
    auth = {"Authorization": "Bearer alice-token"}
    assert client.get("/api/orgs/mine/reads/board", headers=auth).json() == {"org": "mine"}
    res = client.get("/api/orgs/theirs/reads/board", headers=auth)
    assert res.status_code == 404
    assert res.json()["detail"] == "Organisation theirs was not found."
