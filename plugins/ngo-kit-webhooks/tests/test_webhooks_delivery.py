"""Webhooks delivered to a real HTTP server (http.server in a thread on 127.0.0.1).

The events of modules that are built elsewhere are fired by a stand-in module that declares
the same hookspecs and calls them through ``tx.emit``, as the real modules do.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ngo_kit_webhooks
import pytest
import sqlalchemy as sa
from ngo_kit_webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    DeliveryFailed,
    verify_signature,
)
from ngo_kit_webhooks.delivery import check_destination, post
from ngo_kit_webhooks.settings import WebhooksSettings
from pydantic import BaseModel

from ngo_kit import SYSTEM, Kit, Module, hookimpl, hookspec
from ngo_kit.context import Context
from ngo_kit.db import utcnow
from ngo_kit.outbox import PENDING, SENT, OutboxRow
from ngo_kit.plugins import Registrar
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory

# --- a receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: Message  # case-insensitive, as HTTP header names are
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server that records every POST and answers with queued statuses (then 204)."""

    answers: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(Received(self.path, self.headers, body))
            status = state.answers.pop(0) if state.answers else 204
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "11" if status >= 300 else "0")
            self.end_headers()
            if status >= 300:
                self.wfile.write(b"not today\r\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def allow_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver is plain HTTP on 127.0.0.1, which production settings refuse."""
    monkeypatch.setenv("NGO_KIT_WEBHOOKS_ALLOW_LOCAL", "1")


# --- stand-ins for the modules whose events we publish -----------------------------------------


class Award(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    points: int
    reason: str
    at: dt.datetime


specs = types.ModuleType("webhooks_standin_hookspecs")


@hookspec
def ngo_kit_points_awarded(tx: Context, award: Any) -> None:
    """Stand-in for the points module's event."""


@hookspec
def ngo_kit_reward_redeemed(tx: Context, redemption: Any) -> None:
    """Stand-in for the points module's event."""


@hookspec
def ngo_kit_stock_moved(tx: Context, move: Any) -> None:
    """Stand-in for the inventory module's event."""


@hookspec
def ngo_kit_shift_completed(tx: Context, shift: Any, attendance: Any) -> None:
    """Stand-in for the volunteer module's event."""


@hookspec
def ngo_kit_hours_approved(tx: Context, hours: Any) -> None:
    """Stand-in for the volunteer module's event."""


@hookspec
def ngo_kit_user_registered(tx: Context, user: Any) -> None:
    """Stand-in for the registration module's event."""


for _spec in (
    ngo_kit_points_awarded,
    ngo_kit_reward_redeemed,
    ngo_kit_stock_moved,
    ngo_kit_shift_completed,
    ngo_kit_hours_approved,
    ngo_kit_user_registered,
):
    setattr(specs, _spec.__name__, _spec)


class StandIn:
    ngo_kit_plugin_name = "webhooks-standin"

    @hookimpl
    def ngo_kit_register_modules(self, register: Registrar[Module]) -> None:
        register(Module("standin", hookspecs=specs))


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    return kit_factory(
        modules=["webhooks", "standin"],
        plugins=[ngo_kit_webhooks, StandIn()],
        catch_messages=False,
        outbox_backoff_seconds=30,
    )


@pytest.fixture
def org(kit: Kit) -> OrgRead:
    return kit.create_organisation("rainbow", "Rainbow Aid")


@pytest.fixture
def other_org(kit: Kit) -> OrgRead:
    return kit.create_organisation("sunrise", "Sunrise Relief")


def add_endpoint(kit: Kit, org: OrgRead, url: str, events: list[str], **more: Any) -> Any:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        return tx.webhooks.add_endpoint(url=url, events=events, **more)


def award() -> Award:
    return Award(
        id=uuid.uuid4(),
        member_id=uuid.uuid4(),
        points=50,
        reason="服务 4 小时",
        at=dt.datetime(2026, 5, 1, 9, 30, tzinfo=dt.UTC),
    )


def outbox_rows(kit: Kit) -> list[OutboxRow]:
    with kit.begin(actor=SYSTEM) as tx:
        return list(tx.session.scalars(sa.select(OutboxRow).order_by(OutboxRow.created_at)))


def make_due(kit: Kit) -> None:
    with kit.engine.begin() as conn:
        conn.execute(sa.update(OutboxRow).values(next_attempt_at=utcnow()))


# --- tests ------------------------------------------------------------------------------------


def test_a_subscribed_event_is_posted_signed_after_commit(
    kit: Kit, org: OrgRead, receiver: Receiver
) -> None:
    endpoint = add_endpoint(kit, org, receiver.url(), ["points_awarded"])
    given = award()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=given)
        assert receiver.requests == []  # nothing leaves before the commit
    [request] = receiver.requests
    [row] = outbox_rows(kit)
    assert (row.status, row.receipt, row.channel) == (SENT, "HTTP 204", "webhook")
    assert request.headers[DELIVERY_HEADER] == str(row.id)
    assert request.headers[EVENT_HEADER] == "points_awarded"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    signature = request.headers[SIGNATURE_HEADER]
    assert verify_signature(endpoint.secret, signature, request.body)
    assert not verify_signature(endpoint.secret, signature, request.body.replace(b"50", b"5000"))
    assert not verify_signature("whsec_another", signature, request.body)
    document = request.json()
    assert document["id"] == str(row.id)
    assert document["event"] == "points_awarded"
    assert document["organisation"] == {"id": str(org.id), "slug": "rainbow"}
    assert document["data"] == {"award": given.model_dump(mode="json")}
    assert document["data"]["award"]["reason"] == "服务 4 小时"


def test_a_failing_receiver_is_retried_with_the_same_delivery_and_body(
    kit: Kit, org: OrgRead, receiver: Receiver
) -> None:
    endpoint = add_endpoint(kit, org, receiver.url(), ["points_awarded"])
    receiver.answers = [500, 503]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=award())
    [row] = outbox_rows(kit)
    assert (row.status, row.attempts) == (PENDING, 1)
    assert row.last_error == f"DeliveryFailed: HTTP 500 from {receiver.url()}: not today"
    assert kit.outbox.work().handled == 0  # waiting for the backoff
    make_due(kit)
    assert kit.outbox.work().failed == 1
    make_due(kit)
    assert kit.outbox.work().sent == 1
    [row] = outbox_rows(kit)
    assert (row.status, row.attempts, row.last_error) == (SENT, 3, None)
    assert len(receiver.requests) == 3
    assert {r.headers[DELIVERY_HEADER] for r in receiver.requests} == {str(row.id)}
    assert len({r.body for r in receiver.requests}) == 1
    assert all(
        verify_signature(endpoint.secret, r.headers[SIGNATURE_HEADER], r.body)
        for r in receiver.requests
    )


def test_an_unreachable_receiver_and_a_redirect_are_failed_attempts(
    kit: Kit, org: OrgRead, receiver: Receiver
) -> None:
    add_endpoint(kit, org, "http://127.0.0.1:9/closed", ["points_awarded"])
    add_endpoint(kit, org, receiver.url("/moved"), ["points_awarded"])
    receiver.answers = [302]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=award())
    errors = sorted(r.last_error or "" for r in outbox_rows(kit))
    assert all(r.status == PENDING for r in outbox_rows(kit))
    assert errors[0].startswith("DeliveryFailed: HTTP 302 from")
    assert errors[1].startswith("DeliveryFailed: http://127.0.0.1:9/closed could not be reached")
    assert [r.path for r in receiver.requests] == ["/moved"]  # the redirect was not followed


def test_events_of_another_organisation_never_reach_this_ones_endpoints(
    kit: Kit, org: OrgRead, other_org: OrgRead, receiver: Receiver
) -> None:
    add_endpoint(kit, org, receiver.url("/rainbow"), ["points_awarded"])
    add_endpoint(kit, other_org, receiver.url("/sunrise"), ["points_awarded"])
    with kit.begin(org=other_org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=award())
    assert receiver.at("/rainbow") == []
    [request] = receiver.at("/sunrise")
    assert request.json()["organisation"]["slug"] == "sunrise"


def test_unsubscribed_and_inactive_endpoints_get_nothing(
    kit: Kit, org: OrgRead, receiver: Receiver
) -> None:
    add_endpoint(kit, org, receiver.url("/stock"), ["stock_moved"])
    add_endpoint(kit, org, receiver.url("/paused"), ["points_awarded"], active=False)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=award())
    assert receiver.requests == []
    assert outbox_rows(kit) == []


def test_a_rolled_back_event_sends_nothing(kit: Kit, org: OrgRead, receiver: Receiver) -> None:
    add_endpoint(kit, org, receiver.url(), ["points_awarded"])
    with pytest.raises(RuntimeError), kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=award())
        raise RuntimeError("the award failed")
    assert receiver.requests == []
    assert outbox_rows(kit) == []


def test_a_delivery_queued_before_its_endpoint_was_removed_or_paused_is_skipped(
    kit_factory: KitFactory, receiver: Receiver
) -> None:
    kit = kit_factory(
        modules=["webhooks", "standin"],
        plugins=[ngo_kit_webhooks, StandIn()],
        catch_messages=False,
        outbox_dispatch_after_commit=False,
    )
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    removed = add_endpoint(kit, org, receiver.url("/removed"), ["points_awarded"])
    paused = add_endpoint(kit, org, receiver.url("/paused"), ["points_awarded"])
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_points_awarded", award=award())
        tx.webhooks.remove_endpoint(removed.id)
        tx.webhooks.update_endpoint(paused.id, active=False)
    assert kit.outbox.work().sent == 2
    receipts = sorted(r.receipt or "" for r in outbox_rows(kit))
    assert receipts == ["skipped: endpoint inactive", "skipped: endpoint removed"]
    assert receiver.requests == []


class Thing(BaseModel):
    id: uuid.UUID
    quantity: Decimal
    note: str


@pytest.mark.parametrize(
    ("hook", "arguments"),
    [
        ("ngo_kit_points_awarded", ("award",)),
        ("ngo_kit_reward_redeemed", ("redemption",)),
        ("ngo_kit_stock_moved", ("move",)),
        ("ngo_kit_shift_completed", ("shift", "attendance")),
        ("ngo_kit_hours_approved", ("hours",)),
        ("ngo_kit_user_registered", ("user",)),
    ],
)
def test_each_event_publishes_its_arguments_as_json(
    kit: Kit, org: OrgRead, receiver: Receiver, hook: str, arguments: tuple[str, ...]
) -> None:
    event = hook.removeprefix("ngo_kit_")
    add_endpoint(kit, org, receiver.url(), [event])
    values = {
        name: Thing(id=uuid.uuid4(), quantity=Decimal("2.5000"), note=name) for name in arguments
    }
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.emit(hook, **values)
    [request] = receiver.requests
    assert request.headers[EVENT_HEADER] == event
    data = request.json()["data"]
    assert data == {name: value.model_dump(mode="json") for name, value in values.items()}
    assert data[arguments[0]]["quantity"] == "2.5000"  # decimals stay exact, as text


def test_org_created_reaches_an_endpoint_seeded_in_the_same_transaction(
    kit_factory: KitFactory, receiver: Receiver
) -> None:
    class Seed:
        ngo_kit_plugin_name = "seed-endpoint"

        @hookimpl(tryfirst=True)
        def ngo_kit_org_created(self, tx: Context, org: OrgRead) -> None:
            tx.webhooks.add_endpoint(url=receiver.url("/platform"), events=["org_created"])

    kit = kit_factory(
        modules=["webhooks"], plugins=[ngo_kit_webhooks, Seed()], catch_messages=False
    )
    org = kit.create_organisation("harbour", "Harbour Food Bank")
    [request] = receiver.at("/platform")
    assert request.headers[EVENT_HEADER] == "org_created"
    assert request.json()["data"]["org"]["slug"] == "harbour"
    assert request.json()["organisation"]["id"] == str(org.id)


def test_without_allow_local_only_public_https_destinations_are_used(
    kit: Kit, org: OrgRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = WebhooksSettings(allow_local=False)
    for url in ("http://example.org/hook", "https://localhost/hook", "https://127.0.0.1:8443/x"):
        with pytest.raises(DeliveryFailed, match="refused"):
            check_destination(url, strict)
    check_destination("http://127.0.0.1/hook", WebhooksSettings(allow_local=True))


def test_an_event_outside_any_organisation_is_sent_nowhere(
    kit: Kit, org: OrgRead, receiver: Receiver
) -> None:
    add_endpoint(kit, org, receiver.url(), ["user_registered"])
    with kit.begin(actor=SYSTEM) as tx:  # accounts are registered outside organisations
        tx.emit("ngo_kit_user_registered", user={"id": str(uuid.uuid4())})
    assert receiver.requests == []
    assert outbox_rows(kit) == []


def test_the_checked_address_is_the_one_connected_to(receiver: Receiver) -> None:
    strict = WebhooksSettings(allow_local=False)
    assert check_destination("https://93.184.216.34/hook", strict) == "93.184.216.34"
    # a name is not resolved again: the request goes to the pinned address, Host kept
    url = f"http://hooks.invalid:{receiver.port}/pinned"
    status, _ = post(url, b"{}", {"X-Test": "1"}, timeout=5, address="127.0.0.1")
    assert status == 204
    [request] = receiver.at("/pinned")
    assert request.headers["Host"] == f"hooks.invalid:{receiver.port}"
