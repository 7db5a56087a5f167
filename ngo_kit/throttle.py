"""Fixed-window counters shared by every process: how core throttles machine clients.

A counter is one row of ``core_throttle`` per key (a digest, never an address or a secret):
``hits`` within a window that started at ``window_started_at``. ``hit`` counts one more in a
unit of work of its own (so a count survives the caller's failure, and no in-process state is
shared between requests) and says how long to wait once the count is past its limit; ``wait``
reads without counting. Keys are namespaced by their callers (``apikey:``, ``apikey-client:``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.db import Base, insert_ignore, utcnow

if TYPE_CHECKING:
    from ngo_kit.kit import Kit


class ThrottleCount(Base):
    """How many hits one key had in its current window."""

    __tablename__ = "core_throttle"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column()


THROTTLE_TABLE: sa.Table = ThrottleCount.__table__  # type: ignore[assignment]


def throttle_key(namespace: str, value: str) -> str:
    """``namespace:`` followed by a digest of ``value``, so no stored key holds the value."""
    return f"{namespace}:{hashlib.sha256(value.encode()).hexdigest()[:64]}"


def hit(kit: Kit, key: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one hit for ``key``; the seconds to wait when that made it more than ``limit`` in
    the window, else ``None``. Runs in a unit of work of its own and commits at once."""
    now = utcnow()
    cut = now - dt.timedelta(seconds=window_seconds)
    table = THROTTLE_TABLE
    expired = table.c.window_started_at <= cut
    bump = (
        table.update()
        .where(table.c.key == key)
        .values(
            hits=sa.case((expired, 1), else_=table.c.hits + 1),
            window_started_at=sa.case((expired, now), else_=table.c.window_started_at),
        )
        .execution_options(preserve_rowcount=True)
    )
    with kit.engine.begin() as connection:
        if connection.execute(bump).rowcount == 0:
            opened = connection.execute(
                insert_ignore(
                    connection, table, key=key, hits=1, window_started_at=now
                ).execution_options(preserve_rowcount=True)
            )
            if opened.rowcount != 1:  # another process opened it first
                connection.execute(bump)
        row = connection.execute(
            sa.select(table.c.hits, table.c.window_started_at).where(table.c.key == key)
        ).one()
    return _retry_after(row.hits, row.window_started_at, limit, window_seconds, now)


def wait(kit: Kit, key: str, *, limit: int, window_seconds: int) -> int | None:
    """The seconds to wait when ``key`` is already past ``limit`` in its window, else ``None``."""
    now = utcnow()
    with kit.engine.connect() as connection:
        row = connection.execute(
            sa.select(THROTTLE_TABLE.c.hits, THROTTLE_TABLE.c.window_started_at).where(
                THROTTLE_TABLE.c.key == key
            )
        ).first()
    if row is None:
        return None
    return _retry_after(row.hits, row.window_started_at, limit, window_seconds, now)


def purge(kit: Kit, *, older_than_seconds: int) -> int:
    """Delete counts whose window started more than ``older_than_seconds`` ago; how many."""
    cut = utcnow() - dt.timedelta(seconds=older_than_seconds)
    with kit.engine.begin() as connection:
        done = connection.execute(
            THROTTLE_TABLE.delete()
            .where(THROTTLE_TABLE.c.window_started_at < cut)
            .execution_options(preserve_rowcount=True)
        )
    return int(done.rowcount)


def _retry_after(
    hits: int, started: dt.datetime, limit: int, window_seconds: int, now: dt.datetime
) -> int | None:
    ends = started + dt.timedelta(seconds=window_seconds)
    if hits <= limit or ends <= now:
        return None
    return max(1, math.ceil((ends - now).total_seconds()))
