"""The plugin's one table: which points operation each hours entry caused."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin


class HoursPointsAward(IdMixin, OrgMixin, TimestampMixin, Base):
    """One points operation made for one hours entry: an award (``points`` > 0) for approved
    hours, or the reversal of that award (``points`` < 0) for an hours reversal.

    The volunteer and points ledgers stay the records of truth; this row only links them, so a
    reversal of hours can find the awards to reverse.
    """

    __tablename__ = "hours_points_award"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "txn_id"),
        sa.Index("ix_hours_points_award_org_id_hours_id", "org_id", "hours_id"),
    )

    hours_id: Mapped[uuid.UUID]
    member_id: Mapped[uuid.UUID]
    txn_id: Mapped[uuid.UUID]
    points: Mapped[int] = mapped_column(sa.BigInteger)
    rule: Mapped[str | None] = mapped_column(sa.String(63))
    reverses_txn_id: Mapped[uuid.UUID | None]
