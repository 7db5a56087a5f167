"""The transactional outbox: nothing lost, nothing sent for a rollback, retries, parallel workers."""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit, hookimpl
from ngo_kit.audit import ONE_STATEMENT_ROWS, AuditEntry
from ngo_kit.db import utcnow
from ngo_kit.errors import Conflict, NgoKitError
from ngo_kit.outbox import DEAD, PENDING, SENDING, SENT, UNCONFIRMED, OutboxMessage, OutboxRow
from ngo_kit.plugins import Channel, Registrar
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory


class Flaky:
    """A channel that fails its first ``failures`` attempts for each message."""

    ngo_kit_plugin_name = "flaky-channel"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: collections.Counter[str] = collections.Counter()
        self.delivered: list[OutboxMessage] = []

    @hookimpl(tryfirst=True)
    def ngo_kit_deliver_message(self, message: OutboxMessage) -> str | None:
        if message.channel != "sms":
            return None
        self.attempts[str(message.id)] += 1
        if self.attempts[str(message.id)] <= self.failures:
            raise ConnectionError("gateway unreachable")
        self.delivered.append(message)
        return "sms-gateway"


def status_of(kit: Kit, message_id: Any) -> OutboxRow:
    with kit.begin(actor=SYSTEM) as tx:
        return tx.session.scalars(sa.select(OutboxRow).where(OutboxRow.id == message_id)).one()


def test_a_message_is_delivered_after_commit(
    kit: Kit, org: OrgRead, delivered_messages: list[OutboxMessage]
) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Welcome", "Hello Ada", data={"n": 1})
        assert delivered_messages == []  # nothing leaves before the commit
    assert [m.id for m in delivered_messages] == [message_id]
    assert delivered_messages[0].org_id == org.id
    row = status_of(kit, message_id)
    assert (row.status, row.attempts, row.receipt) == (SENT, 1, "captured")


def test_a_rolled_back_transaction_sends_nothing(
    kit: Kit, org: OrgRead, delivered_messages: list[OutboxMessage]
) -> None:
    with pytest.raises(RuntimeError), kit.begin(org=org, actor=SYSTEM) as tx:
        tx.send("email", "ada@example.org", "Welcome", "Hello")
        raise RuntimeError("the change failed")
    assert delivered_messages == []
    with kit.begin(actor=SYSTEM) as tx:
        assert tx.session.scalar(sa.select(sa.func.count()).select_from(OutboxRow)) == 0


def outbox_ids(kit: Kit) -> set[Any]:
    with kit.begin(actor=SYSTEM) as tx:
        return set(tx.session.scalars(sa.select(OutboxRow.id)))


def test_messages_are_written_with_the_audit_entries_or_alone(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        audited = [tx.send("email", f"p{i}@example.org", "Hello") for i in range(2)]
        tx.audit("test.sent", "thing", 1, "sent two messages")
    with kit.begin(org=org, actor=SYSTEM) as tx:  # no audit entry to go with
        alone = tx.send("sms", "+8613800138000", "Code")
    with kit.begin(org=org, actor=SYSTEM) as tx:  # more than go in one statement with them
        many = [
            tx.send("email", f"m{i}@example.org", "Hello") for i in range(ONE_STATEMENT_ROWS + 1)
        ]
        tx.audit("test.sent", "thing", 2, "sent many messages")
    assert outbox_ids(kit) == {*audited, alone, *many}
    assert kit.verify() == []


def test_flush_audit_writes_the_messages_so_far_for_code_that_reads_them(
    kit: Kit, org: OrgRead
) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Welcome")
        tx.audit("test.sent", "thing", 1, "sent")
        count = sa.select(sa.func.count()).select_from(OutboxRow)
        assert tx.connection.scalar(count) == 0  # buffered until commit
        tx.flush_audit()
        assert tx.connection.scalar(count) == 1
        assert tx.connection.scalar(sa.select(OutboxRow.id)) == message_id
    assert outbox_ids(kit) == {message_id}


def test_a_message_with_a_dedup_key_is_written_at_once_and_a_duplicate_fails_there(
    kit: Kit, org: OrgRead
) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        first = tx.send("email", "ada@example.org", "Once", dedup_key="welcome:ada")
        assert tx.connection.scalar(sa.select(OutboxRow.id)) == first
        with pytest.raises(Conflict), tx.translate_integrity(Conflict("duplicate")):
            tx.send("email", "ada@example.org", "Twice", dedup_key="welcome:ada")
        assert tx.sent == [first]
    assert outbox_ids(kit) == {first}


def test_a_failed_savepoint_drops_the_messages_and_audit_entries_it_recorded(
    kit: Kit, org: OrgRead
) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        kept = tx.send("email", "kept@example.org", "Kept")
        tx.audit("test.kept", "thing", 1, "kept")
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.send("email", "dropped@example.org", "Dropped")
            tx.audit("test.dropped", "thing", 2, "dropped")
            raise RuntimeError("the block failed")
        with pytest.raises(RuntimeError), tx.savepoint():  # written early, then undone
            tx.send("email", "early@example.org", "Early")
            tx.flush_audit()
            tx.send("email", "late@example.org", "Late")
            tx.audit("test.dropped", "thing", 3, "dropped too")
            raise RuntimeError("the block failed")
        assert tx.sent == [kept]
    assert outbox_ids(kit) == {kept}
    with kit.begin(org=org, actor=SYSTEM) as tx:
        actions = tx.connection.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.org_id == org.id)
        ).all()
    assert "test.kept" in actions
    assert "test.dropped" not in actions
    assert kit.verify() == []


def make_due(kit: Kit, message_id: Any) -> None:
    """Let the backoff pass without waiting for it."""
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(OutboxRow).where(OutboxRow.id == message_id).values(next_attempt_at=utcnow())
        )


def test_failed_deliveries_are_retried_with_backoff_and_recorded(kit_factory: KitFactory) -> None:
    flaky = Flaky(failures=2)
    kit = kit_factory(modules=[], plugins=[flaky], outbox_backoff_seconds=30, catch_messages=False)
    before = utcnow()
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("sms", "+8613800000000", body="code 123456")
    row = status_of(kit, message_id)
    assert (row.status, row.attempts) == (PENDING, 1)
    assert row.last_error == "ConnectionError: gateway unreachable"
    assert row.next_attempt_at >= before + dt.timedelta(seconds=30)  # base backoff
    assert kit.outbox.work().handled == 0  # not due yet
    make_due(kit, message_id)
    retried_at = utcnow()
    assert kit.outbox.work().failed == 1
    row = status_of(kit, message_id)
    assert row.attempts == 2
    assert row.next_attempt_at >= retried_at + dt.timedelta(seconds=60)  # doubled
    make_due(kit, message_id)
    assert kit.outbox.work().sent == 1
    row = status_of(kit, message_id)
    assert (row.status, row.attempts, row.last_error, row.receipt) == (SENT, 3, None, "sms-gateway")
    assert [m.id for m in flaky.delivered] == [message_id]


def test_backoff_doubles_up_to_its_cap(kit_factory: KitFactory) -> None:
    kit = kit_factory(
        modules=[], upgrade=False, outbox_backoff_seconds=5, outbox_backoff_max_seconds=60
    )
    assert [kit.outbox.backoff(n).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_a_message_that_keeps_failing_is_kept_as_dead_and_can_be_requeued(
    kit_factory: KitFactory,
) -> None:
    flaky = Flaky(failures=10)
    kit = kit_factory(
        modules=[],
        plugins=[flaky],
        outbox_max_attempts=2,
        catch_messages=False,
    )
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("sms", "+8613800000000", body="hello")
    make_due(kit, message_id)
    assert kit.outbox.work().dead == 1
    assert status_of(kit, message_id).status == DEAD
    assert kit.outbox.retry_dead() == 1
    assert kit.outbox.status(message_id).status == PENDING


def test_a_message_no_channel_takes_is_not_lost(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[], catch_messages=False)
    kit.pm.unregister(name="console")
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("pigeon", "loft 7", body="coo")
    status = kit.outbox.status(message_id)
    assert status.status == PENDING
    assert "no plugin delivers channel 'pigeon'" in (status.last_error or "")


def test_the_console_channel_prints_in_development(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = kit_factory(modules=[], catch_messages=False)
    with kit.begin(actor=SYSTEM) as tx:
        tx.send("email", "ada@example.org", "Your code", "123456")
    out = capsys.readouterr().out
    assert "[ngo-kit email -> ada@example.org] Your code" in out and "123456" in out


def test_two_workers_deliver_every_message_exactly_once(kit_factory: KitFactory) -> None:
    delivered: collections.Counter[str] = collections.Counter()
    by_worker: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    class Slow:
        ngo_kit_plugin_name = "slow-channel"

        @hookimpl(tryfirst=True)
        def ngo_kit_deliver_message(self, message: OutboxMessage) -> str:
            time.sleep(0.002)
            with lock:
                delivered[str(message.id)] += 1
                by_worker[threading.current_thread().name] += 1
            return "ok"

    kit = kit_factory(
        modules=[], plugins=[Slow()], outbox_dispatch_after_commit=False, catch_messages=False
    )
    with kit.begin(actor=SYSTEM) as tx:
        ids = [tx.send("email", f"p{i}@example.org", body="hi") for i in range(120)]
    workers = [
        threading.Thread(target=kit.outbox.work, kwargs={"batch": 10}, name=f"w{n}")
        for n in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(delivered) == sorted(str(i) for i in ids)
    assert set(delivered.values()) == {1}
    assert kit.outbox.pending() == 0
    if kit.engine.dialect.name != "sqlite":  # SKIP LOCKED lets both work side by side
        assert set(by_worker) == {"w0", "w1"}


def test_a_deferred_message_waits_for_the_worker_while_the_others_go_after_commit(
    kit: Kit, org: OrgRead, delivered_messages: list[OutboxMessage]
) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        later = tx.send("email", "ada@example.org", "Reset", "a link", deferred=True)
        now = tx.send("email", "bo@example.org", "Welcome", "Hello Bo")
    assert [m.id for m in delivered_messages] == [now]  # the request never waits for ``later``
    assert status_of(kit, later).status == PENDING
    assert kit.outbox.work().sent == 1
    assert [m.id for m in delivered_messages] == [now, later]


def test_a_failing_dispatch_after_commit_keeps_the_commit(kit_factory: KitFactory) -> None:
    class Broken:
        ngo_kit_plugin_name = "broken-channel"

        @hookimpl(tryfirst=True)
        def ngo_kit_deliver_message(self, message: OutboxMessage) -> str:
            raise RuntimeError("smtp down")

    kit = kit_factory(modules=[], plugins=[Broken()], catch_messages=False)
    org = kit.create_organisation("dispatch", "Dispatch")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.audit("thing.done", "thing", 1, "done")
        message_id = tx.send("email", "a@example.org", body="x")
    assert kit.outbox.status(message_id).attempts == 1
    assert kit.verify() == []


def test_in_production_the_console_channel_leaves_other_channels_messages_queued(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = kit_factory(modules=[], catch_messages=False, environment="production")
    with kit.begin(actor=SYSTEM) as tx:
        email = tx.send("emial", "ada@example.org", "Your code", "123456")  # a misspelt channel
        note = tx.send("console", "operator", "Nightly job", "done")
    assert kit.outbox.status(email).status == PENDING  # not printed, not marked sent, not lost
    assert kit.outbox.status(note).status == SENT
    out = capsys.readouterr().out
    assert "123456" not in out and "Nightly job" in out


class FailAfterSend:
    """Breaks the first statement that writes to ``core_outbox`` once ``armed`` and a message
    went out: the database failing (a lost connection, a pooler's refusal) after the channel's
    send returned, before the delivery was recorded."""

    def __init__(self, kit: Kit, delivered: list[OutboxMessage]) -> None:
        self.delivered = delivered
        self.armed = True
        sa.event.listen(kit.engine, "before_cursor_execute", self.check)

    def check(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.armed and self.delivered and statement.lstrip().startswith("UPDATE core_outbox"):
            self.armed = False
            raise sa.exc.OperationalError(statement, {}, ConnectionError("connection lost"))


def test_a_failure_after_the_send_never_delivers_the_message_twice(
    kit_factory: KitFactory, delivered_messages: list[OutboxMessage]
) -> None:
    kit = kit_factory(modules=[], outbox_dispatch_after_commit=False)
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Your code", "123456")
    broken = FailAfterSend(kit, delivered_messages)
    with pytest.raises(NgoKitError):
        kit.outbox.work()
    assert not broken.armed  # the failure struck after the send
    kit.outbox.work()
    kit.outbox.work()
    assert [m.id for m in delivered_messages] == [message_id]


def test_an_unconfirmed_delivery_is_kept_as_dead_not_sent_again(
    kit_factory: KitFactory, delivered_messages: list[OutboxMessage]
) -> None:
    """A claim that runs out with no outcome recorded: on a channel that is not at least once
    (email), whether the message went out is unknown, so it is kept for an operator."""
    kit = kit_factory(modules=[], outbox_dispatch_after_commit=False)
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Your code", "123456")
    FailAfterSend(kit, delivered_messages)
    with pytest.raises(NgoKitError):
        kit.outbox.work()
    assert kit.outbox.status(message_id).status == SENDING
    assert kit.outbox.pending() == 1
    make_due(kit, message_id)  # the claim ran out
    assert kit.outbox.work().dead == 1
    status = kit.outbox.status(message_id)
    assert (status.status, status.last_error) == (DEAD, UNCONFIRMED)
    assert [m.id for m in delivered_messages] == [message_id]


def test_an_unconfirmed_delivery_on_an_at_least_once_channel_is_sent_again_with_its_id(
    kit_factory: KitFactory,
) -> None:
    class Hooks:
        ngo_kit_plugin_name = "hook-channel"

        def __init__(self) -> None:
            self.delivered: list[OutboxMessage] = []

        @hookimpl
        def ngo_kit_register_channels(self, register: Registrar[Channel]) -> None:
            register(Channel("hook", at_least_once=True))

        @hookimpl(tryfirst=True)
        def ngo_kit_deliver_message(self, message: OutboxMessage) -> str | None:
            self.delivered.append(message)
            return "posted"

    hooks = Hooks()
    kit = kit_factory(
        modules=[], plugins=[hooks], outbox_dispatch_after_commit=False, catch_messages=False
    )
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("hook", "https://receiver.example.org", body="{}")
    FailAfterSend(kit, hooks.delivered)
    with pytest.raises(NgoKitError):
        kit.outbox.work()
    assert kit.outbox.work().handled == 0  # claimed: nobody sends it while the claim lasts
    make_due(kit, message_id)
    assert kit.outbox.work().sent == 1
    assert [m.id for m in hooks.delivered] == [message_id, message_id]
    assert kit.outbox.status(message_id).attempts == 2


def test_a_pass_that_stops_gives_back_the_messages_it_had_not_sent(
    kit_factory: KitFactory, delivered_messages: list[OutboxMessage]
) -> None:
    kit = kit_factory(modules=[], outbox_dispatch_after_commit=False)
    with kit.begin(actor=SYSTEM) as tx:
        first = tx.send("email", "ada@example.org", body="one")
        second = tx.send("email", "bo@example.org", body="two")
    FailAfterSend(kit, delivered_messages)
    with pytest.raises(NgoKitError):
        kit.outbox.work()
    unsent = {first, second} - {m.id for m in delivered_messages}
    assert len(unsent) == 1
    (left,) = unsent
    assert (kit.outbox.status(left).status, kit.outbox.status(left).attempts) == (PENDING, 0)
    assert kit.outbox.work().sent == 1
    assert sorted(m.id for m in delivered_messages) == sorted([first, second])


class Completer:
    """Completes ``stand-in`` messages at delivery; fails the first time when ``fail_once``."""

    ngo_kit_plugin_name = "completer"

    def __init__(self, fail_once: bool = False) -> None:
        self.fail_once = fail_once
        self.prepared = 0

    @hookimpl
    def ngo_kit_prepare_message(self, message: OutboxMessage) -> OutboxMessage | None:
        if message.data.get("purpose") != "stand-in":
            return None
        self.prepared += 1
        if self.fail_once and self.prepared == 1:
            raise ConnectionError("directory unreachable")
        return message.model_copy(update={"body": f"secret {self.prepared}"})


def test_a_message_is_completed_just_before_delivery_and_its_row_keeps_the_stand_in(
    kit_factory: KitFactory,
) -> None:
    flaky, completer = Flaky(failures=0), Completer(fail_once=True)
    kit = kit_factory(
        modules=[], plugins=[flaky, completer], outbox_backoff_seconds=30, catch_messages=False
    )
    with kit.begin(actor=SYSTEM) as tx:
        stand_in = tx.send("sms", "+8613800000000", data={"purpose": "stand-in"}, deferred=True)
        plain = tx.send("sms", "+8613800000001", body="as written", deferred=True)
    assert kit.outbox.work().failed == 1  # a failed preparation is a failed attempt, retried
    assert status_of(kit, stand_in).last_error == "ConnectionError: directory unreachable"
    make_due(kit, stand_in)
    assert kit.outbox.work().sent == 1
    bodies = {m.id: m.body for m in flaky.delivered}
    assert bodies == {plain: "as written", stand_in: "secret 2"}
    with kit.begin() as tx:
        stored = tx.session.scalar(sa.select(OutboxRow.body).where(OutboxRow.id == stand_in))
    assert stored == ""
