"""Tables of the points module: accounts, the hash-chained ledger, lots, rules, rewards, recognition.

The ledger is double-entry: every operation (``points_txn``) writes entries (``points_entry``)
that sum to zero, one per account touched. Member accounts may not go below zero (a guarded
UPDATE and a CHECK); the system accounts of an organisation (issuance, redemption, expiry,
adjustment) carry the other side. Entries are append-only and hash-chained per organisation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.chain_keys import key_id_column
from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin

MEMBER = "member"
SYSTEM_KINDS = ("issuance", "redemption", "expiry", "adjustment")
#: Column info of an ``account_id`` that names a points account, not a person's account: the
#: person is the account's ``member_id`` (see ``ngo_kit.db.PERSON_ID``).
NOT_A_PERSON = {"person_id": False}

#: System accounts have no member; they use this member id so (org, kind, member) stays unique.
NO_MEMBER = uuid.UUID(int=0)


class PointsAccount(IdMixin, OrgMixin, Base):
    """A member's points account, or one of the organisation's system accounts.

    ``balance`` is changed only by guarded UPDATEs in the transaction that writes the entries;
    ``earned`` is the lifetime total awarded (levels and badges read it).
    """

    __tablename__ = "points_account"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "kind", "member_id"),
        sa.CheckConstraint(f"kind <> '{MEMBER}' OR balance >= 0", name="member_not_negative"),
    )

    kind: Mapped[str] = mapped_column(sa.String(16))
    member_id: Mapped[uuid.UUID] = mapped_column()
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    earned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column()


class PointsSettings(OrgMixin, Base):
    """Per-organisation settings of the points module."""

    __tablename__ = "points_settings"
    __table_args__ = (sa.PrimaryKeyConstraint("org_id"),)

    expiry_months: Mapped[int | None] = mapped_column()
    transfers_allowed: Mapped[bool] = mapped_column(default=False)
    #: True once the organisation has levels or threshold badges: awards then check them.
    recognition: Mapped[bool] = mapped_column(default=False)


class PointsTxn(IdMixin, OrgMixin, Base):
    """One operation (award, deduct, transfer, redeem, refund, reverse, expire).

    ``key`` makes the operation idempotent: ``key_scope`` (unique) is the key scoped to the
    actor and the operation, ``key_fingerprint`` the call's parameters (``ngo_kit.idempotency``).
    ``reverses_id`` points at the operation a reversal compensates (unique, so an operation is
    reversed at most once).
    """

    __tablename__ = "points_txn"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "key_scope"),
        sa.UniqueConstraint("org_id", "reverses_id"),
        sa.Index("ix_points_txn_rule_member", "org_id", "rule_id", "member_id", "created_at"),
    )

    kind: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str | None] = mapped_column(sa.String(200))
    key_scope: Mapped[str | None] = mapped_column(sa.String(64))
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    member_id: Mapped[uuid.UUID | None] = mapped_column()
    counterparty_id: Mapped[uuid.UUID | None] = mapped_column()
    points: Mapped[int] = mapped_column(sa.BigInteger)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    reference: Mapped[str] = mapped_column(sa.String(200), default="")
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
    reverses_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column()


class PointsEntry(IdMixin, OrgMixin, Base):
    """One leg of an operation on one account: append-only, hash-chained per organisation."""

    __tablename__ = "points_entry"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "seq"),
        sa.Index("ix_points_entry_account_seq", "account_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(sa.BigInteger)
    txn_id: Mapped[uuid.UUID] = mapped_column(index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(info=NOT_A_PERSON)
    kind: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    reference: Mapped[str] = mapped_column(sa.String(200), default="")
    actor: Mapped[str] = mapped_column(sa.String(40))
    at: Mapped[dt.datetime] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = key_id_column()


ENTRY_FIELDS = (
    "id",
    "org_id",
    "seq",
    "txn_id",
    "account_id",
    "kind",
    "amount",
    "balance_after",
    "reason",
    "reference",
    "actor",
    "at",
)


class PointsLot(IdMixin, OrgMixin, Base):
    """Points earned together, with the date they expire; spending takes the soonest first."""

    __tablename__ = "points_lot"
    __table_args__ = (sa.Index("ix_points_lot_account_open", "account_id", "remaining"),)

    account_id: Mapped[uuid.UUID] = mapped_column(info=NOT_A_PERSON)
    txn_id: Mapped[uuid.UUID] = mapped_column()
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    earned_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class PointsLotUse(IdMixin, OrgMixin, Base):
    """How much of a lot an operation consumed, so a refund or reversal restores the same lots."""

    __tablename__ = "points_lot_use"

    lot_id: Mapped[uuid.UUID] = mapped_column()
    txn_id: Mapped[uuid.UUID] = mapped_column(index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)


class PointsTally(OrgMixin, Base):
    """Points a member earned in one period (``all``, ``2026-11``, ``2026-W48``): leaderboards."""

    __tablename__ = "points_tally"
    __table_args__ = (
        sa.PrimaryKeyConstraint("org_id", "period", "member_id"),
        sa.Index("ix_points_tally_rank", "org_id", "period", "points"),
    )

    period: Mapped[str] = mapped_column(sa.String(10))
    member_id: Mapped[uuid.UUID] = mapped_column()
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class PointsRule(IdMixin, OrgMixin, TimestampMixin, Base):
    """An earning rule the organisation configured: which event, how many points, caps, window."""

    __tablename__ = "points_rule"
    __table_args__ = (sa.UniqueConstraint("org_id", "name"),)

    name: Mapped[str] = mapped_column(sa.String(63))
    rule_type: Mapped[str] = mapped_column(sa.String(63))
    event: Mapped[str] = mapped_column(sa.String(63), index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    per_unit: Mapped[str | None] = mapped_column(sa.String(63))
    formula: Mapped[str | None] = mapped_column(sa.String(500))
    cap_day: Mapped[int | None] = mapped_column(sa.BigInteger)
    cap_week: Mapped[int | None] = mapped_column(sa.BigInteger)
    cap_month: Mapped[int | None] = mapped_column(sa.BigInteger)
    starts_at: Mapped[dt.datetime | None] = mapped_column()
    ends_at: Mapped[dt.datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")


class PointsReward(IdMixin, OrgMixin, TimestampMixin, Base):
    """A catalogue item bought with points; ``stock`` None means unlimited."""

    __tablename__ = "points_reward"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "code"),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    )

    code: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))
    name_zh: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    description_zh: Mapped[str] = mapped_column(sa.Text, default="")
    image_url: Mapped[str] = mapped_column(sa.String(500), default="")
    price: Mapped[int] = mapped_column(sa.BigInteger)
    stock: Mapped[int | None] = mapped_column(sa.BigInteger)
    per_member_limit: Mapped[int | None] = mapped_column()
    starts_at: Mapped[dt.datetime | None] = mapped_column()
    ends_at: Mapped[dt.datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)


class PointsRedemption(IdMixin, OrgMixin, TimestampMixin, Base):
    """A member's redemption of a reward: requested, then fulfilled or cancelled (refunded)."""

    __tablename__ = "points_redemption"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "key_scope"),
        sa.Index("ix_points_redemption_member", "org_id", "member_id", "reward_id"),
    )

    # No foreign key on purpose: on MariaDB the key check share-locks the reward row, and two
    # redemptions then deadlock upgrading to the stock UPDATE. Rewards are never deleted.
    reward_id: Mapped[uuid.UUID] = mapped_column()
    member_id: Mapped[uuid.UUID] = mapped_column()
    quantity: Mapped[int] = mapped_column()
    points: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str | None] = mapped_column(sa.String(200))
    key_scope: Mapped[str | None] = mapped_column(sa.String(64))
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    txn_id: Mapped[uuid.UUID] = mapped_column()
    refund_txn_id: Mapped[uuid.UUID | None] = mapped_column()
    note: Mapped[str] = mapped_column(sa.String(300), default="")
    updated_at: Mapped[dt.datetime] = mapped_column()


class PointsLevel(IdMixin, OrgMixin, Base):
    """A level reached at a lifetime-earned threshold."""

    __tablename__ = "points_level"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "name"),
        sa.UniqueConstraint("org_id", "threshold"),
    )

    name: Mapped[str] = mapped_column(sa.String(100))
    threshold: Mapped[int] = mapped_column(sa.BigInteger)


class PointsBadge(IdMixin, OrgMixin, TimestampMixin, Base):
    """A badge and its criteria: ``manual``, ``threshold`` (lifetime earned) or ``event_count``."""

    __tablename__ = "points_badge"
    __table_args__ = (sa.UniqueConstraint("org_id", "code"),)

    code: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    image_url: Mapped[str] = mapped_column(sa.String(500), default="")
    criteria: Mapped[str] = mapped_column(sa.String(16))
    threshold: Mapped[int | None] = mapped_column(sa.BigInteger)
    event: Mapped[str | None] = mapped_column(sa.String(63))


class PointsBadgeAward(IdMixin, OrgMixin, Base):
    """A badge awarded to a member (once per badge and member)."""

    __tablename__ = "points_badge_award"
    __table_args__ = (sa.UniqueConstraint("org_id", "badge_id", "member_id"),)

    badge_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("points_badge.id", ondelete="RESTRICT")
    )
    member_id: Mapped[uuid.UUID] = mapped_column()
    awarded_at: Mapped[dt.datetime] = mapped_column()
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
