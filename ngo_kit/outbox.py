"""The transactional outbox: messages recorded inside a transaction, delivered after commit.

``tx.send(...)`` writes a row in the same transaction as the change that caused it, so a
rolled-back transaction sends nothing and a committed one loses nothing. After commit the kit
tries to deliver the new rows at once (``outbox_dispatch_after_commit``), except those sent
``deferred`` (``tx.send(..., deferred=True)``), which only a worker delivers, so that no request
waits for them; whatever fails or is left is delivered by ``ngo-kit outbox work``. Delivery goes
through the ``ngo_kit_deliver_message`` decision hook, after ``ngo_kit_prepare_message`` has
completed the messages written only at delivery (a sign-in code). Failed attempts are retried
with exponential backoff; after ``outbox_max_attempts`` a message is marked ``dead`` and kept
for ``ngo-kit outbox retry``.

Workers claim due rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB, so several
run side by side and each message is delivered by one of them.

A delivery is recorded in three steps, so no failure of the database after a send can send
the message again: the claim (``sending``, the attempt counted, ``outbox_claim_seconds`` to
finish) is committed before the channel is called; the outcome is recorded in a transaction of
its own after the channel returns; a failure to record it leaves the message ``sending``, which
no worker takes while its claim lasts. When a claim runs out unrecorded (a worker killed between
the send and the record, a database gone at that moment), whether the message went out is
unknown: a channel registered ``at_least_once`` gets it again, with the same message ``id`` for
the receiver to drop the duplicate; any other channel never sends it twice, and the message is
kept as ``dead`` for an operator to check and requeue (``ngo-kit outbox retry``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import Mapped, Session, mapped_column

from ngo_kit.db import Base, IdMixin, new_id, utcnow
from ngo_kit.schemas import ReadModel

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

log = logging.getLogger("ngo_kit.outbox")
T = TypeVar("T")

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
#: ``last_error`` of a message whose claim ran out before its outcome was recorded.
UNCONFIRMED = "the worker stopped between sending and recording the outcome; it may have been sent"


class OutboxRow(IdMixin, Base):
    """One message waiting for, or done with, delivery."""

    __tablename__ = "core_outbox"
    __table_args__ = (
        sa.Index("ix_core_outbox_due", "status", "next_attempt_at"),
        sa.UniqueConstraint("dedup_key"),
    )

    org_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("core_organisation.id", ondelete="RESTRICT"), index=True
    )
    channel: Mapped[str] = mapped_column(sa.String(40))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(300), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    locale: Mapped[str] = mapped_column(sa.String(16), default="en")
    dedup_key: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    receipt: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class OutboxMessage(ReadModel):
    """A message as channels receive it. ``id`` stays the same across retries."""

    id: uuid.UUID
    org_id: uuid.UUID | None
    channel: str
    recipient: str
    subject: str = ""
    body: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    locale: str = "en"
    attempts: int = 0


class OutboxStatus(ReadModel):
    """A message's delivery state, for operators and tests."""

    id: uuid.UUID
    channel: str
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    receipt: str | None
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None


@dataclass
class WorkResult:
    """What one pass of the worker did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        """Messages this pass attempted."""
        return self.sent + self.failed + self.dead


class NoChannel(Exception):
    """No plugin took the message: its channel is not installed."""


def message_row(
    *,
    org_id: uuid.UUID | None,
    channel: str,
    recipient: str,
    subject: str = "",
    body: str = "",
    data: dict[str, Any] | None = None,
    locale: str = "en",
    dedup_key: str | None = None,
) -> dict[str, Any]:
    """A pending message's row, with its id, as ``tx.send`` writes it to ``core_outbox``.

    Every sign-up and most staff actions send a message: the row goes in on the driver cursor
    (``ngo_kit.statements``), on PostgreSQL in the statement that appends the unit of work's
    audit entries (``ngo_kit.audit.write_audit``).
    """
    now = utcnow()
    return dict(
        id=new_id(),
        org_id=org_id,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        data=data or {},
        locale=locale,
        dedup_key=dedup_key,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


OUTBOX_TABLE: sa.Table = OutboxRow.__table__  # type: ignore[assignment]


class Outbox:
    """``kit.outbox``: delivery of recorded messages."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    def dispatch(self, ids: Iterable[uuid.UUID]) -> WorkResult:
        """Try to deliver these messages now (after the commit that recorded them)."""
        return self._pass(list(ids), limit=None)

    def work(
        self,
        *,
        batch: int = 100,
        once: bool = True,
        idle_sleep: float = 1.0,
        max_passes: int | None = None,
    ) -> WorkResult:
        """Deliver due messages in batches until none is due (``once``) or forever.

        ``max_passes`` bounds a long-running worker (tests, cron windows).
        """
        total = WorkResult()
        passes = 0
        while True:
            result = self._pass(None, limit=batch)
            total.sent += result.sent
            total.failed += result.failed
            total.dead += result.dead
            passes += 1
            if max_passes is not None and passes >= max_passes:
                return total
            if result.handled == 0:
                if once:
                    return total
                time.sleep(idle_sleep)

    def retry_dead(self) -> int:
        """Put every dead message back in the queue; returns how many."""
        with self.kit.engine.begin() as conn:
            result = conn.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.status == DEAD)
                .values(status=PENDING, attempts=0, next_attempt_at=utcnow())
            )
        return int(result.rowcount or 0)

    def status(self, message_id: uuid.UUID) -> OutboxStatus:
        """The delivery state of one message."""
        from ngo_kit.errors import NotFound

        with self.kit.engine.connect() as conn:
            row = conn.execute(sa.select(OutboxRow).where(OutboxRow.id == message_id)).first()
        if row is None:
            raise NotFound("Message", message_id)
        return OutboxStatus.model_validate(row._mapping)

    def pending(self) -> int:
        """How many messages still wait for delivery, or for the outcome of one to be recorded."""
        waiting = OutboxRow.status.in_((PENDING, SENDING))
        with self.kit.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).where(waiting)) or 0)

    def _pass(self, ids: list[uuid.UUID] | None, *, limit: int | None) -> WorkResult:
        result = WorkResult()
        if ids is not None and not ids:
            return result
        claimed = self._run(lambda session: self._claim(session, ids, limit, result))
        for n, message in enumerate(claimed):
            try:
                self._deliver(message, result)
            except Exception:
                self._release(claimed[n + 1 :])
                raise
        return result

    def _run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in a transaction of its own; driver errors translated."""
        try:
            with Session(self.kit.engine) as session, session.begin():
                return work(session)
        except sa.exc.DBAPIError as exc:
            from ngo_kit.context import translate_database_errors

            raise translate_database_errors(exc) from exc

    def _claim(
        self, session: Session, ids: list[uuid.UUID] | None, limit: int | None, result: WorkResult
    ) -> list[OutboxMessage]:
        """Mark the due messages ``sending`` (attempt counted, claim deadline set), committed
        before any is sent; a ``sending`` message whose claim ran out is handled here too."""
        now = utcnow()
        stmt = sa.select(OutboxRow).where(
            OutboxRow.status.in_((PENDING, SENDING)), OutboxRow.next_attempt_at <= now
        )
        if ids is not None:
            stmt = stmt.where(OutboxRow.id.in_(ids))
        stmt = stmt.order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        claim_until = now + dt.timedelta(seconds=self.kit.settings.outbox_claim_seconds)
        claimed: list[OutboxMessage] = []
        for row in list(session.scalars(stmt.with_for_update(skip_locked=True))):
            if row.status == SENDING and not self._at_least_once(row.channel):
                row.status, row.last_error = DEAD, UNCONFIRMED
                result.dead += 1
                log.warning("outbox message %s: %s; kept as dead", row.id, UNCONFIRMED)
                continue
            claimed.append(OutboxMessage.model_validate(row))
            row.status, row.attempts, row.next_attempt_at = SENDING, row.attempts + 1, claim_until
        return claimed

    def _at_least_once(self, channel: str) -> bool:
        found = self.kit.channels.get(channel)
        return bool(found is not None and found.at_least_once)

    def _deliver(self, message: OutboxMessage, result: WorkResult) -> None:
        """Send one claimed message, then record the outcome in a transaction of its own."""
        attempt = message.attempts + 1
        values: dict[str, Any] = {}
        try:
            prepared = self.kit.hook.ngo_kit_prepare_message(message=message, kit=self.kit)
            if prepared is not None:
                message = prepared
            receipt = self.kit.hook.ngo_kit_deliver_message(message=message, kit=self.kit)
            if receipt is None:
                raise NoChannel(f"no plugin delivers channel '{message.channel}'")
        except Exception as exc:
            values["last_error"] = f"{type(exc).__name__}: {exc}"[:1000]
            if attempt >= self.kit.settings.outbox_max_attempts:
                values["status"] = DEAD
            else:
                values.update(status=PENDING, next_attempt_at=utcnow() + self.backoff(attempt))
            # Only the error's type: channels' error texts often quote the recipient (smtplib
            # does), and logs must stay free of personal data. The text is in last_error.
            log.warning(
                "outbox message %s attempt %s failed: %s (see its last_error)",
                message.id,
                attempt,
                type(exc).__name__,
            )
        else:
            values.update(
                status=SENT, sent_at=utcnow(), receipt=str(receipt)[:300], last_error=None
            )
        # only this claim's outcome: a claim that ran out may have been taken over meanwhile
        record = (
            sa.update(OutboxRow)
            .where(
                OutboxRow.id == message.id,
                OutboxRow.status == SENDING,
                OutboxRow.attempts == attempt,
            )
            .values(**values)
        )
        self._run(lambda session: session.execute(record))
        status = values["status"]
        if status == SENT:
            result.sent += 1
        elif status == DEAD:
            result.dead += 1
        else:
            result.failed += 1

    def _release(self, messages: list[OutboxMessage]) -> None:
        """Give back claims that were never sent (the pass stopped), so they are not taken for
        unconfirmed; if the database refuses this too, their claims run out instead."""
        if not messages:
            return
        release = (
            sa.update(OutboxRow)
            .where(OutboxRow.id.in_([m.id for m in messages]), OutboxRow.status == SENDING)
            .values(status=PENDING, attempts=OutboxRow.attempts - 1, next_attempt_at=utcnow())
        )
        try:
            self._run(lambda session: session.execute(release))
        except Exception:
            log.exception(
                "outbox: %s claimed messages stay claimed until it runs out", len(messages)
            )

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next attempt: base x 2^(attempts-1), capped."""
        s = self.kit.settings
        return dt.timedelta(
            seconds=min(
                s.outbox_backoff_seconds * 2 ** (attempts - 1), s.outbox_backoff_max_seconds
            )
        )
