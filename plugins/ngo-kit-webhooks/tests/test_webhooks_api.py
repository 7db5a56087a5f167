"""The endpoints over HTTP, through the routes generated from the service's declarations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import ngo_kit_webhooks
import pytest
from fastapi.testclient import TestClient

from ngo_kit import Kit, hookimpl
from ngo_kit.testing import KitFactory
from ngo_kit.web import create_app
from ngo_kit.web.testing import assert_declared, keep_problems

OWNER, MEMBER = uuid.uuid4(), uuid.uuid4()
URL = "/api/orgs/rainbow/webhooks/endpoints"
HOOK = "https://crm.example.org/hook"


class Sessions:
    """Two bearer tokens: the organisation's owner and a member without a role."""

    ngo_kit_plugin_name = "tests.webhooks-sessions"

    @hookimpl
    def ngo_kit_session_actor(self, kit: Kit, token: str) -> uuid.UUID | None:
        return {"owner": OWNER, "member": MEMBER}.get(token)


OWNS = {"Authorization": "Bearer owner"}


@pytest.fixture
def client(kit_factory: KitFactory) -> Iterator[TestClient]:
    kit = kit_factory(modules=["webhooks"], plugins=[ngo_kit_webhooks, Sessions()])
    kit.create_organisation("rainbow", "Rainbow Aid", owner=OWNER)
    with kit.begin(org="rainbow", actor=OWNER) as tx:
        tx.tenancy.add_member(MEMBER)
    app = create_app(kit)
    answered = keep_problems(app)
    yield TestClient(app)
    assert_declared(answered)


def test_endpoints_are_added_read_changed_rotated_and_removed(client: TestClient) -> None:
    res = client.post(URL, json={"url": HOOK, "events": ["points_awarded"]}, headers=OWNS)
    assert res.status_code == 201, res.text
    created = res.json()
    assert created["secret"].startswith("whsec_")
    endpoint = f"{URL}/{created['id']}"
    assert [e["id"] for e in client.get(URL, headers=OWNS).json()] == [created["id"]]
    assert "secret" not in client.get(endpoint, headers=OWNS).json()
    changed = client.patch(endpoint, json={"active": False}, headers=OWNS)
    assert changed.status_code == 200 and changed.json()["active"] is False
    rotated = client.post(f"{endpoint}/rotate-secret", headers=OWNS).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert client.delete(endpoint, headers=OWNS).status_code == 204
    assert client.get(endpoint, headers=OWNS).status_code == 404


def test_mistakes_answer_problems_naming_what_is_wrong(client: TestClient) -> None:
    res = client.post(URL, json={"url": HOOK, "events": ["nope"]}, headers=OWNS)
    assert res.status_code == 422 and res.json()["field"] == "events"
    client.post(URL, json={"url": HOOK, "events": ["stock_moved"]}, headers=OWNS)
    again = client.post(URL, json={"url": HOOK, "events": ["stock_moved"]}, headers=OWNS)
    assert again.status_code == 409 and again.json()["code"] == "already_exists"
    member = {"Authorization": "Bearer member"}
    assert client.get(URL, headers=member).status_code == 403
    assert client.get(URL).status_code == 401
