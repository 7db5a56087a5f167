"""Routes generated from operation declarations: parameters, bodies, keys, ``me``, statuses,
guards, OpenAPI entries, and the start-up checks against hand-written routes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import Field

from ngo_kit import Kit, hookimpl
from ngo_kit.context import Context
from ngo_kit.errors import AlreadyExists, ConfigurationError, InsufficientStock
from ngo_kit.operations import Limit, Page, decode_cursor, encode_cursor, operation
from ngo_kit.plugins import Module, Permission, Registrar
from ngo_kit.schemas import InputModel, ReadModel, check, coerce
from ngo_kit.testing import KitFactory
from ngo_kit.web import RequestContext, Routes, create_app, request_context
from ngo_kit.web.operations import undeclared
from ngo_kit.web.testing import keep_problems

OWNER, MEMBER, STRANGER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PLOTS = ("beans", "chard", "dill", "kale", "leek", "mint", "sage")
TOKENS = {"owner": OWNER, "member": MEMBER, "stranger": STRANGER}


class PlotIn(InputModel):
    """A new plot."""

    name: str = Field(min_length=1, max_length=40)
    size: int = Field(ge=1, le=100)
    key: str | None = Field(default=None, min_length=1, max_length=200)


class PlotRead(ReadModel):
    """A plot."""

    id: uuid.UUID
    name: str
    size: int
    key: str | None = None


class GardenService:
    """A service without tables: it answers from its arguments."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @operation("POST /plots", permission="garden.manage", status=201, errors=(AlreadyExists,))
    def add_plot(self, data: PlotIn | dict[str, Any] | None = None, /, **kwargs: Any) -> PlotRead:
        """Add a plot (``garden.manage``).

        A name already taken is ``AlreadyExists``.
        """
        spec = coerce(PlotIn, data, kwargs)
        self.tx.require("garden.manage")
        if spec.name == "taken":
            raise AlreadyExists("Plot", spec.name)
        if spec.name == "undeclared":
            raise InsufficientStock(requested="1", available="0")
        return PlotRead(id=uuid.uuid4(), name=spec.name, size=spec.size, key=spec.key)

    @operation("GET /plots", permission="garden.view")
    def plots(self, limit: int = 50, after: str | None = None) -> Page[PlotRead]:
        """The plots, by name, a page at a time."""
        self.tx.require("garden.view")
        limit = check("limit", Limit, limit)
        start = decode_cursor(after)
        names = [n for n in PLOTS if start is None or n > start[0]]
        page = [PlotRead(id=uuid.uuid5(uuid.NAMESPACE_URL, n), name=n, size=1) for n in names]
        more = len(page) > limit
        next_cursor = encode_cursor(page[limit - 1].name) if more else None
        return Page[PlotRead](items=page[:limit], next=next_cursor)

    @operation("GET /plots/{plot_id}", permission="garden.view")
    def plot(self, plot_id: uuid.UUID | str, verbose: bool = False) -> dict[str, Any]:
        """One plot."""
        self.tx.require("garden.view")
        return {"id": str(plot_id), "verbose": verbose}

    @operation("GET /members/{member_id}/plots", permission="garden.view", own=True)
    def plots_of(self, member_id: uuid.UUID, limit: int = 10) -> dict[str, Any]:
        """A member's plots (their own, or ``garden.view``)."""
        if member_id != self.tx.actor_id:
            self.tx.require("garden.view")
        return {"member": str(member_id), "limit": limit}

    @operation("POST /plots/{plot_id}/water", permission="garden.manage")
    def water(self, plot_id: uuid.UUID, litres: int, key: str | None = None) -> dict[str, Any]:
        """Water a plot; a repeated ``key`` waters once."""
        self.tx.require("garden.manage")
        return {"plot": str(plot_id), "litres": litres, "key": key}

    @operation("POST /plots/{plot_id}/waterings", permission="garden.manage")
    def water_often(self, plot_id: uuid.UUID, litres: Iterable[int]) -> dict[str, Any]:
        """Water a plot several times (an iterable, as services often take)."""
        return {"litres": list(litres)}

    @operation("POST /plots/{plot_id}/notes", permission="garden.manage")
    def note(self, plot_id: uuid.UUID, text: str, client: str | None = None) -> dict[str, Any]:
        """Leave a note on a plot; ``client`` is the caller's throttling key."""
        return {"text": text, "client": client}

    @operation("DELETE /plots/{plot_id}", permission="garden.manage")
    def remove_plot(self, plot_id: uuid.UUID) -> None:
        """Remove a plot."""
        self.tx.require("garden.manage")

    @operation("GET /open-hours", public=True)
    def open_hours(self) -> dict[str, str]:
        """When the garden is open; no sign-in needed."""
        return {"hours": "9-17"}

    @operation("GET /map", custom=True, permission="garden.view")
    def map(self) -> bytes:
        """The garden's map, an image."""
        self.tx.require("garden.view")
        return b"map"

    @operation(not_http="SYSTEM only: run from the command line", changes=True, cli="reset")
    def reset(self) -> int:
        """Forget everything."""
        return 0


class GardenPlugin:
    """The ``garden`` module, its permissions, a hand-written map route and test sessions."""

    ngo_kit_plugin_name = "tests.garden"

    def __init__(self, service: type[Any] = GardenService, routes: bool = True) -> None:
        self.service = service
        self.routes = routes

    @hookimpl
    def ngo_kit_register_modules(self, register: Registrar[Module]) -> None:
        register(Module("garden", service=self.service))

    @hookimpl
    def ngo_kit_register_permissions(self, register: Registrar[Permission]) -> None:
        register(Permission("garden.view", "see plots", ("owner",)))
        register(Permission("garden.manage", "change plots", ("owner",)))

    @hookimpl
    def ngo_kit_register_routes(self, register: Registrar[Routes], kit: Kit) -> None:
        if not self.routes:
            return
        router = APIRouter()

        @router.get("/map")
        def garden_map(ctx: RequestContext = Depends(request_context)) -> dict[str, str]:
            with ctx.begin() as tx:
                return {"map": tx.service("garden").map().decode()}

        register(Routes("garden", router))

    @hookimpl
    def ngo_kit_session_actor(self, kit: Kit, token: str) -> uuid.UUID | None:
        return TOKENS.get(token)


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


URL = "/api/orgs/rainbow/garden"


@pytest.fixture
def garden_kit(kit_factory: KitFactory) -> Kit:
    kit = kit_factory(modules=["garden"], plugins=[GardenPlugin()])
    kit.create_organisation("rainbow", "Rainbow", owner=OWNER)
    kit.create_organisation("sunrise", "Sunrise", owner=STRANGER)
    with kit.begin(org="rainbow", actor=OWNER) as tx:
        tx.tenancy.add_member(MEMBER)
    return kit


@pytest.fixture
def client(garden_kit: Kit) -> TestClient:
    return TestClient(create_app(garden_kit))


def test_the_input_model_is_the_body_and_the_declared_status_answers(client: TestClient) -> None:
    res = client.post(f"{URL}/plots", json={"name": "roses", "size": 4}, headers=auth("owner"))
    assert res.status_code == 201, res.text
    assert res.json()["name"] == "roses" and res.json()["size"] == 4


def test_an_unknown_or_bad_field_is_a_422_naming_it(client: TestClient) -> None:
    res = client.post(
        f"{URL}/plots", json={"name": "roses", "size": 4, "colour": "red"}, headers=auth("owner")
    )
    assert res.status_code == 422 and res.json()["field"] == "colour", res.text
    res = client.post(f"{URL}/plots", json={"name": "roses", "size": 0}, headers=auth("owner"))
    assert res.status_code == 422 and res.json()["field"] == "size", res.text


def test_a_declared_error_answers_with_its_status(client: TestClient) -> None:
    res = client.post(f"{URL}/plots", json={"name": "taken", "size": 4}, headers=auth("owner"))
    assert res.status_code == 409 and res.json()["code"] == "already_exists"


def test_parameters_without_a_model_make_the_body(client: TestClient) -> None:
    plot = uuid.uuid4()
    res = client.post(f"{URL}/plots/{plot}/water", json={"litres": 3}, headers=auth("owner"))
    assert res.status_code == 200, res.text
    assert res.json() == {"plot": str(plot), "litres": 3, "key": None}
    res = client.post(
        f"{URL}/plots/{plot}/water", json={"litres": 3, "x": 1}, headers=auth("owner")
    )
    assert res.status_code == 422 and res.json()["field"] == "x"
    res = client.post(f"{URL}/plots/not-a-uuid/water", json={"litres": 3}, headers=auth("owner"))
    assert res.status_code == 422 and res.json()["field"] == "plot_id"


def test_plain_parameters_get_the_boundary_checks_and_the_client_comes_from_the_request(
    client: TestClient,
) -> None:
    url = f"{URL}/plots/{uuid.uuid4()}/notes"
    res = client.post(url, json={"text": "line one\nline two"}, headers=auth("owner"))
    assert res.status_code == 200, res.text
    assert res.json() == {"text": "line one\nline two", "client": "ip:testclient"}
    res = client.post(url, json={"text": "bell\x07"}, headers=auth("owner"))
    assert (res.status_code, res.json()["field"]) == (422, "text")
    res = client.post(url, json={"text": "x", "client": "ip:1.2.3.4"}, headers=auth("owner"))
    assert (res.status_code, res.json()["field"]) == (422, "client")  # never the caller's pick
    res = client.post(
        f"{URL}/plots/{uuid.uuid4()}/water", json={"litres": True}, headers=auth("owner")
    )
    assert (res.status_code, res.json()["field"]) == (422, "litres")  # strict integers


def test_an_iterable_parameter_is_a_list_checked_whole_at_the_boundary(
    client: TestClient,
) -> None:
    url = f"{URL}/plots/{uuid.uuid4()}/waterings"
    res = client.post(url, json={"litres": [1, 2]}, headers=auth("owner"))
    assert (res.status_code, res.json()) == (200, {"litres": [1, 2]})
    for wrong in ("AAA", [1, "x"], [True]):  # a string is iterable: it must not reach the service
        res = client.post(url, json={"litres": wrong}, headers=auth("owner"))
        assert res.status_code == 422 and res.json()["field"].startswith("litres"), res.text


def test_the_idempotency_key_comes_from_the_header_too(client: TestClient) -> None:
    plot = uuid.uuid4()
    headers = {**auth("owner"), "Idempotency-Key": "k-1"}
    res = client.post(f"{URL}/plots/{plot}/water", json={"litres": 3}, headers=headers)
    assert res.json()["key"] == "k-1"
    res = client.post(f"{URL}/plots", json={"name": "a", "size": 1, "key": "k-1"}, headers=headers)
    assert res.status_code == 201 and res.json()["key"] == "k-1"
    res = client.post(f"{URL}/plots", json={"name": "a", "size": 1, "key": "k-2"}, headers=headers)
    assert res.status_code == 422 and res.json()["field"] == "key", res.text
    assert res.json()["rule"] == "key_differs"
    zh = client.post(
        f"{URL}/plots/{plot}/water",
        json={"litres": 3, "key": "other"},
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert zh.status_code == 422 and "Idempotency-Key" in zh.json()["detail"]
    assert "不一致" in zh.json()["detail"]


def test_get_takes_query_parameters_and_me_is_the_signed_in_account(client: TestClient) -> None:
    plot = uuid.uuid4()
    res = client.get(f"{URL}/plots/{plot}", params={"verbose": "true"}, headers=auth("owner"))
    assert res.json() == {"id": str(plot), "verbose": True}
    res = client.get(f"{URL}/members/me/plots", params={"limit": 3}, headers=auth("member"))
    assert res.status_code == 200, res.text
    assert res.json() == {"member": str(MEMBER), "limit": 3}
    res = client.get(f"{URL}/members/{OWNER}/plots", headers=auth("member"))
    assert res.status_code == 403
    res = client.get(f"{URL}/members/you/plots", headers=auth("member"))
    assert res.status_code == 422 and res.json()["field"] == "member_id"


def test_a_method_returning_none_answers_204(client: TestClient) -> None:
    res = client.delete(f"{URL}/plots/{uuid.uuid4()}", headers=auth("owner"))
    assert res.status_code == 204 and res.content == b""


def test_who_may_call_is_checked_before_the_input(client: TestClient) -> None:
    bad = {"name": "", "size": 0}
    assert client.post(f"{URL}/plots", json=bad).status_code == 401
    assert client.post(f"{URL}/plots", json=bad, headers=auth("member")).status_code == 403
    assert client.post(f"{URL}/plots", json=bad, headers=auth("stranger")).status_code == 404
    assert client.get(f"{URL}/open-hours").json() == {"hours": "9-17"}
    assert client.get(f"{URL}/map").status_code == 401  # the custom route gets the guard too
    assert client.get(f"{URL}/map", headers=auth("owner")).json() == {"map": "map"}


def test_the_openapi_entries_come_from_the_declarations(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    add = spec["paths"]["/api/orgs/{org}/garden/plots"]["post"]
    assert add["operationId"] == "garden.add_plot" and add["tags"] == ["garden"]
    assert add["summary"] == "Add a plot (``garden.manage``)"
    assert add["x-ngo-kit-permission"] == "garden.manage"
    assert "already_exists" in add["responses"]["409"]["description"]
    assert "key_reused" in add["responses"]["409"]["description"]
    assert {"401", "403", "404", "422"} <= set(add["responses"])
    water = spec["paths"]["/api/orgs/{org}/garden/plots/{plot_id}/water"]["post"]
    headers = [p["name"] for p in water["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    body = water["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert spec["components"]["schemas"][body]["required"] == ["litres"]
    custom = spec["paths"]["/api/orgs/{org}/garden/map"]["get"]
    assert custom["operationId"] == "garden.map" and custom["x-ngo-kit-permission"] == "garden.view"
    assert "204" in spec["paths"]["/api/orgs/{org}/garden/plots/{plot_id}"]["delete"]["responses"]


def test_a_generated_route_on_a_hand_written_one_is_refused(kit_factory: KitFactory) -> None:
    class Clash(GardenService):
        @operation("GET /map", permission="garden.view")
        def map(self) -> bytes:
            return b""

    kit = kit_factory(modules=["garden"], plugins=[GardenPlugin(Clash)], upgrade=False)
    with pytest.raises(ConfigurationError, match=r"core\.E052.*garden\.map"):
        create_app(kit)


def test_a_custom_operation_without_its_route_is_refused(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["garden"], plugins=[GardenPlugin(routes=False)], upgrade=False)
    with pytest.raises(ConfigurationError, match=r"core\.E053.*garden\.map"):
        create_app(kit)


def test_an_unregistered_permission_is_refused(kit_factory: KitFactory) -> None:
    class Typo(GardenService):
        @operation("GET /typo", permission="garden.veiw")
        def typo(self) -> None: ...

    kit = kit_factory(modules=["garden"], plugins=[GardenPlugin(Typo)], upgrade=False)
    with pytest.raises(ConfigurationError, match=r"core\.E055.*garden\.veiw"):
        create_app(kit)


def test_an_answer_the_declaration_does_not_list_is_reported(garden_kit: Kit) -> None:
    app = create_app(garden_kit)
    problems = keep_problems(app)
    client = TestClient(app)
    client.post(f"{URL}/plots", json={"name": "taken", "size": 1}, headers=auth("owner"))
    client.post(f"{URL}/plots", json={"name": "x"}, headers=auth("owner"))
    assert undeclared(problems) == []
    res = client.post(f"{URL}/plots", json={"name": "undeclared", "size": 1}, headers=auth("owner"))
    assert res.status_code == 409
    (report,) = undeclared(problems)
    assert "garden.add_plot" in report and "InsufficientStock" in report


def test_a_listing_answers_pages_that_follow_their_cursor(client: TestClient) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        res = client.get(f"{URL}/plots", params=params, headers=auth("owner"))
        assert res.status_code == 200, res.text
        seen += [p["name"] for p in res.json()["items"]]
        if res.json()["next"] is None:
            break
        params = {"limit": 3, "after": res.json()["next"]}
    assert seen == list(PLOTS)


def test_a_page_size_past_the_maximum_or_an_altered_cursor_is_a_422(client: TestClient) -> None:
    res = client.get(f"{URL}/plots", params={"limit": 501}, headers=auth("owner"))
    assert res.status_code == 422 and res.json()["field"] == "limit"
    cursor = encode_cursor("chard")
    altered = encode_cursor("dill").split(".")[0] + "." + cursor.split(".")[1]
    res = client.get(
        f"{URL}/plots",
        params={"after": altered},
        headers={**auth("owner"), "Accept-Language": "zh"},
    )
    assert res.status_code == 422, res.text
    assert (res.json()["field"], res.json()["rule"]) == ("after", "cursor_invalid")
    assert "游标" in res.json()["detail"]
    assert (
        client.get(f"{URL}/plots", params={"after": "x"}, headers=auth("owner")).status_code == 422
    )


def test_a_listing_that_does_not_return_a_page_is_refused(kit_factory: KitFactory) -> None:
    class Unpaged(GardenService):
        @operation("GET /plots", permission="garden.view")
        def plots(self, limit: int = 50, after: str | None = None) -> list[PlotRead]:  # type: ignore[override]
            return []

    kit = kit_factory(modules=["garden"], plugins=[GardenPlugin(Unpaged)], upgrade=False)
    with pytest.raises(ConfigurationError, match=r"core\.E054.*garden\.plots.*Page"):
        create_app(kit)
