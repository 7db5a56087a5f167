"""Registration tables: accounts (shared across organisations), sign-in state, membership offers,
custom fields and consent.

Accounts, sessions, codes and throttles are not tenant-owned: one person has one account across
organisations. Membership itself is core's ``core_membership`` (``actor_id`` = account id).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin, utcnow

ACCOUNT_FK = "registration_account.id"


class Account(IdMixin, TimestampMixin, Base):
    """A person's sign-in identity. Personal fields become NULL when the person is erased."""

    __tablename__ = "registration_account"

    email: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    birth_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    email_verified_at: Mapped[dt.datetime | None] = mapped_column()
    phone_verified_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[dt.datetime | None] = mapped_column()


class SignInSession(IdMixin, TimestampMixin, Base):
    """An opaque session token, stored as its SHA-256 digest."""

    __tablename__ = "registration_session"

    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(ACCOUNT_FK, ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    #: when the session was last used, to the nearest few minutes (``session_idle_hours``);
    #: ``None`` for a session opened before the column existed (its ``created_at`` stands in)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()


class OneTimeCode(IdMixin, TimestampMixin, Base):
    """A numeric code sent by SMS or email, stored as a keyed hash; few attempts, short life."""

    __tablename__ = "registration_code"
    __table_args__ = (sa.Index("ix_registration_code_lookup", "account_id", "purpose"),)

    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey(ACCOUNT_FK, ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(40))
    target: Mapped[str | None] = mapped_column(sa.String(320))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()


class Throttle(Base):
    """A count within a window for one key: failed sign-ins of an identifier or a client, or
    codes and links asked for one recipient, account or client. Keys hold digests, never the
    address itself."""

    __tablename__ = "registration_throttle"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column()
    locked_until: Mapped[dt.datetime | None] = mapped_column()


class Invitation(IdMixin, OrgMixin, TimestampMixin, Base):
    """A signed, single-use offer to join the organisation with a role."""

    __tablename__ = "registration_invitation"

    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    role: Mapped[str] = mapped_column(sa.String(63))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    invited_by: Mapped[str] = mapped_column(sa.String(40))
    expires_at: Mapped[dt.datetime] = mapped_column()
    accepted_by: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[dt.datetime | None] = mapped_column()


class JoinRequest(IdMixin, OrgMixin, TimestampMixin, Base):
    """A person asking to join; an administrator approves or rejects it."""

    __tablename__ = "registration_join_request"

    account_id: Mapped[uuid.UUID] = mapped_column(index=True)
    message: Mapped[str | None] = mapped_column(sa.String(1000))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(sa.String(40))
    decided_at: Mapped[dt.datetime | None] = mapped_column()


class FieldDefinition(IdMixin, OrgMixin, TimestampMixin, Base):
    """A custom field of one form (``registration``, ``volunteer_profile``...), defined as data."""

    __tablename__ = "registration_field"
    __table_args__ = (sa.UniqueConstraint("org_id", "form", "name"),)

    form: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(63))
    kind: Mapped[str] = mapped_column(sa.String(16))
    required: Mapped[bool] = mapped_column(default=False)
    label_en: Mapped[str] = mapped_column(sa.String(200), default="")
    label_zh: Mapped[str] = mapped_column(sa.String(200), default="")
    choices: Mapped[list[Any]] = mapped_column(default=list)
    min_value: Mapped[str | None] = mapped_column(sa.String(40))
    max_value: Mapped[str | None] = mapped_column(sa.String(40))
    max_length: Mapped[int | None] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)


class FieldValues(IdMixin, OrgMixin, Base):
    """A member's answers to one form's custom fields (JSON), per organisation."""

    __tablename__ = "registration_field_values"
    __table_args__ = (sa.UniqueConstraint("org_id", "account_id", "form"),)

    account_id: Mapped[uuid.UUID] = mapped_column(index=True)
    form: Mapped[str] = mapped_column(sa.String(63))
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsentDocument(IdMixin, OrgMixin, TimestampMixin, Base):
    """One version of a policy a person agrees to, for one purpose (``privacy``, ``photos``)."""

    __tablename__ = "registration_consent_document"
    __table_args__ = (sa.UniqueConstraint("org_id", "purpose", "version"),)

    purpose: Mapped[str] = mapped_column(sa.String(63))
    version: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    required: Mapped[bool] = mapped_column(default=False)


class Consent(IdMixin, OrgMixin, Base):
    """A recorded agreement (or a guardian's, for a minor) to one document version; withdrawable."""

    __tablename__ = "registration_consent"
    __table_args__ = (sa.Index("ix_registration_consent_who", "org_id", "account_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column()
    document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("registration_consent_document.id", ondelete="RESTRICT")
    )
    purpose: Mapped[str] = mapped_column(sa.String(63))
    version: Mapped[int] = mapped_column()
    given_by: Mapped[str] = mapped_column(sa.String(16), default="self")
    guardian_name: Mapped[str | None] = mapped_column(sa.String(200))
    guardian_relationship: Mapped[str | None] = mapped_column(sa.String(63))
    method: Mapped[str] = mapped_column(sa.String(63))
    accepted_at: Mapped[dt.datetime] = mapped_column()
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column()
