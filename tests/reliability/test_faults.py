"""Faults: the database connection dropped mid-transaction or mid-delivery.

PostgreSQL (and MariaDB) let another session kill a connection; SQLite has no such thing, so
these tests run on server databases only.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, DatabaseUnavailable, Kit, hookimpl
from ngo_kit.audit import AuditEntry
from ngo_kit.outbox import OutboxMessage
from ngo_kit.testing import KitFactory

pytestmark = pytest.mark.usefixtures("server_database")


@pytest.fixture
def server_database(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[], upgrade=False)
    if kit.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server connection to drop")


def backend_id(connection: sa.Connection) -> int:
    query = (
        "SELECT pg_backend_pid()"
        if connection.dialect.name == "postgresql"
        else "SELECT CONNECTION_ID()"
    )
    return int(connection.exec_driver_sql(query).scalar_one())


def kill(kit: Kit, backend: int) -> None:
    """Kill a session from outside, as a server restart or a network cut would.

    Returns once the session is gone: the server rolls a killed session back after the kill
    returns, and until then its row locks stand (a worker's next claim would skip the row).
    """
    admin = sa.create_engine(kit.engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"
        else:
            conn.exec_driver_sql(f"KILL {int(backend)}")
            alive = "SELECT count(*) FROM information_schema.processlist WHERE id = :pid"
        deadline = time.monotonic() + 30
        while conn.scalar(sa.text(alive), {"pid": backend}) and time.monotonic() < deadline:
            time.sleep(0.01)
    admin.dispose()


def audit_actions(kit: Kit) -> list[str]:
    with kit.begin(actor=SYSTEM) as tx:
        return list(tx.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


def test_a_connection_dropped_mid_transaction_fails_cleanly_and_saves_nothing(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=[])
    org = kit.create_organisation("faults", "Faults")
    with pytest.raises(DatabaseUnavailable) as info, kit.begin(org=org, actor=SYSTEM) as tx:
        tx.audit("first.half", "op", 1, "written before the cut")
        kill(kit, backend_id(tx.connection))
        tx.audit("second.half", "op", 1, "written after the cut")
    assert "nothing was saved" in str(info.value)
    assert "first.half" not in audit_actions(kit)
    with kit.begin(org=org, actor=SYSTEM) as tx:  # the pool recovers on the next unit of work
        tx.audit("after", "op", 2, "the next call works")
    assert audit_actions(kit)[-1] == "after"
    assert kit.verify() == []


def test_a_connection_dropped_during_delivery_never_delivers_twice(
    kit_factory: KitFactory,
) -> None:
    deliveries: collections.Counter[str] = collections.Counter()
    worker_connection: dict[str, int] = {}
    cut_once = threading.Event()

    class CuttingChannel:
        """Delivers, then has the worker's connection cut before the delivery is recorded."""

        ngo_kit_plugin_name = "cutting-channel"

        @hookimpl(tryfirst=True)
        def ngo_kit_deliver_message(self, message: OutboxMessage) -> str:
            deliveries[str(message.id)] += 1
            if not cut_once.is_set():
                cut_once.set()
                kill(kit, worker_connection["pid"])
            return "delivered"

    kit = kit_factory(
        modules=[],
        plugins=[CuttingChannel()],
        outbox_dispatch_after_commit=False,
        catch_messages=False,
    )

    @sa.event.listens_for(kit.engine, "begin")
    def remember_backend(conn: Any) -> None:
        worker_connection["pid"] = backend_id(conn)

    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", body="hello")
    with pytest.raises(DatabaseUnavailable):
        kit.outbox.work()
    sa.event.remove(kit.engine, "begin", remember_backend)
    # The claim was committed before the send, so the message is not handed out again while
    # its claim runs: an email (at most once) is never delivered twice. When the claim runs
    # out with no outcome, the outbox decides by the channel (tests/core/test_outbox.py).
    assert kit.outbox.status(message_id).status == "sending"
    assert kit.outbox.work().sent == 0
    assert deliveries == {str(message_id): 1}
