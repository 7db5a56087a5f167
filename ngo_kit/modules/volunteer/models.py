"""Tables of the volunteer module.

Personal data (names, contacts, birth dates) lives in the registration module; these tables
hold account ids (``user_id``: the member's actor id) and volunteer-specific data only. The
exceptions are the emergency contact and the pinyin name index, both erased when the person is
(``ngo_kit_user_erased``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.chain_keys import key_id_column
from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin

# --- volunteers --------------------------------------------------------------------------


class Skill(IdMixin, OrgMixin, Base):
    """A skill on the organisation's list (``first_aid``, ``driving``, ``knitting``)."""

    __tablename__ = "volunteer_skill"
    __table_args__ = (sa.UniqueConstraint("org_id", "code"),)

    code: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))


class Profile(IdMixin, OrgMixin, TimestampMixin, Base):
    """A member's volunteer profile in one organisation."""

    __tablename__ = "volunteer_profile"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "user_id"),
        sa.Index("ix_volunteer_profile_org_status", "org_id", "status"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16), default="applicant")
    languages: Mapped[list[Any]] = mapped_column(default=list)
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    district: Mapped[str] = mapped_column(sa.String(100), default="")
    latitude: Mapped[Decimal | None] = mapped_column()
    longitude: Mapped[Decimal | None] = mapped_column()
    availability: Mapped[list[Any]] = mapped_column(default=list)
    unavailable_dates: Mapped[list[Any]] = mapped_column(default=list)
    emergency_contact_name: Mapped[str] = mapped_column(sa.String(200), default="")
    emergency_contact_phone: Mapped[str] = mapped_column(sa.String(40), default="")
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    hours_total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    attended_count: Mapped[int] = mapped_column(default=0)
    no_show_count: Mapped[int] = mapped_column(default=0)
    last_signed_up_at: Mapped[dt.datetime | None] = mapped_column()


class ProfileSkill(IdMixin, OrgMixin, Base):
    """A volunteer's skill with a level (1 = beginner .. 5 = expert)."""

    __tablename__ = "volunteer_profile_skill"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "user_id", "skill"),
        sa.Index("ix_volunteer_profile_skill_org_skill", "org_id", "skill"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column()
    skill: Mapped[str] = mapped_column(sa.String(63))
    level: Mapped[int] = mapped_column(default=1)


class Certification(IdMixin, OrgMixin, Base):
    """A certification a volunteer holds (first aid...), valid until a date."""

    __tablename__ = "volunteer_certification"
    __table_args__ = (sa.UniqueConstraint("org_id", "user_id", "kind"),)

    user_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(63))
    valid_until: Mapped[dt.date | None] = mapped_column(sa.Date)


class NameIndex(OrgMixin, Base):
    """Search keys for a volunteer's name: lowercase name, full pinyin and initials."""

    __tablename__ = "volunteer_name_index"
    __table_args__ = (sa.PrimaryKeyConstraint("org_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column()
    name_key: Mapped[str] = mapped_column(sa.String(300), default="")
    pinyin: Mapped[str] = mapped_column(sa.String(600), default="")
    initials: Mapped[str] = mapped_column(sa.String(100), default="")


# --- activities and shifts --------------------------------------------------------------


class Activity(IdMixin, OrgMixin, TimestampMixin, Base):
    """A project or event that has shifts (or tasks)."""

    __tablename__ = "volunteer_activity"

    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    place: Mapped[str] = mapped_column(sa.String(300), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="open")


class Shift(IdMixin, OrgMixin, Base):
    """One time slot of an activity, with its capacity and who may take it.

    ``taken`` counts confirmed places and ``arrivals`` every sign-up ever made; both only
    change through guarded UPDATEs, which also serialise sign-ups to one shift.
    """

    __tablename__ = "volunteer_shift"
    __table_args__ = (sa.Index("ix_volunteer_shift_org_starts", "org_id", "starts_at"),)

    activity_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("volunteer_activity.id", ondelete="RESTRICT"), index=True
    )
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    place: Mapped[str] = mapped_column(sa.String(300), default="")
    latitude: Mapped[Decimal | None] = mapped_column()
    longitude: Mapped[Decimal | None] = mapped_column()
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    district: Mapped[str] = mapped_column(sa.String(100), default="")
    capacity: Mapped[int] = mapped_column()
    taken: Mapped[int] = mapped_column(default=0)
    arrivals: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    required_skills: Mapped[list[Any]] = mapped_column(default=list)
    required_certifications: Mapped[list[Any]] = mapped_column(default=list)
    min_age: Mapped[int | None] = mapped_column()
    cancel_cutoff_hours: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")


class ShiftRole(IdMixin, OrgMixin, Base):
    """A role within a shift (driver x2, packer x5) with its own capacity."""

    __tablename__ = "volunteer_shift_role"
    __table_args__ = (sa.UniqueConstraint("org_id", "shift_id", "name"),)

    shift_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("volunteer_shift.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(63))
    capacity: Mapped[int] = mapped_column()
    taken: Mapped[int] = mapped_column(default=0)
    required_skills: Mapped[list[Any]] = mapped_column(default=list)


class SignUp(IdMixin, OrgMixin, Base):
    """A volunteer's place on a shift: confirmed, waitlisted, cancelled, attended or no-show.

    ``seq`` is the arrival number on the shift (from ``Shift.arrivals``): the waitlist is
    served in ``seq`` order. ``starts_at``/``ends_at`` copy the shift's, for the overlap check.
    """

    __tablename__ = "volunteer_signup"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "shift_id", "user_id"),
        sa.UniqueConstraint("org_id", "key_scope"),
        sa.Index("ix_volunteer_signup_shift_status_seq", "shift_id", "status", "seq"),
        sa.Index("ix_volunteer_signup_user_starts", "org_id", "user_id", "starts_at"),
    )

    shift_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("volunteer_shift.id", ondelete="RESTRICT")
    )
    role_id: Mapped[uuid.UUID | None] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column()
    key: Mapped[str | None] = mapped_column(sa.String(200))
    #: the key scoped to the actor and the operation, and the call's fingerprint
    #: (``ngo_kit.idempotency``)
    key_scope: Mapped[str | None] = mapped_column(sa.String(64))
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    checked_in_at: Mapped[dt.datetime | None] = mapped_column()
    checked_out_at: Mapped[dt.datetime | None] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    promoted_at: Mapped[dt.datetime | None] = mapped_column()


# --- hours ------------------------------------------------------------------------------


class HoursEntry(IdMixin, OrgMixin, Base):
    """Approved service hours: an append-only, hash-chained ledger (chain ``volunteer_hours``).

    A correction is a new entry with negative ``hours`` whose ``reverses_id`` names the
    original; ``Profile.hours_total`` moves in the same transaction.
    """

    __tablename__ = "volunteer_hours"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "seq"),
        sa.UniqueConstraint("org_id", "reverses_id"),
        sa.UniqueConstraint("org_id", "signup_id"),
        sa.UniqueConstraint("org_id", "claim_id"),
        sa.UniqueConstraint("org_id", "assignment_id"),
        sa.Index("ix_volunteer_hours_org_user", "org_id", "user_id"),
    )

    seq: Mapped[int] = mapped_column(sa.BigInteger)
    at: Mapped[dt.datetime] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    hours: Mapped[Decimal] = mapped_column()
    source: Mapped[str] = mapped_column(sa.String(16))
    activity_id: Mapped[uuid.UUID | None] = mapped_column()
    shift_id: Mapped[uuid.UUID | None] = mapped_column()
    signup_id: Mapped[uuid.UUID | None] = mapped_column()
    claim_id: Mapped[uuid.UUID | None] = mapped_column()
    assignment_id: Mapped[uuid.UUID | None] = mapped_column()
    reverses_id: Mapped[uuid.UUID | None] = mapped_column()
    served_on: Mapped[dt.date] = mapped_column(sa.Date)
    recorded_by: Mapped[str] = mapped_column(sa.String(40))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = key_id_column()


HOURS_FIELDS = (
    "id",
    "org_id",
    "seq",
    "at",
    "user_id",
    "hours",
    "source",
    "activity_id",
    "shift_id",
    "signup_id",
    "claim_id",
    "assignment_id",
    "reverses_id",
    "served_on",
    "recorded_by",
    "note",
)


class HoursClaim(IdMixin, OrgMixin, TimestampMixin, Base):
    """Hours a volunteer reports themselves, waiting for a coordinator's decision."""

    __tablename__ = "volunteer_hours_claim"
    __table_args__ = (sa.UniqueConstraint("org_id", "key_scope"),)

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    activity_id: Mapped[uuid.UUID | None] = mapped_column()
    served_on: Mapped[dt.date] = mapped_column(sa.Date)
    hours: Mapped[Decimal] = mapped_column()
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(sa.String(40))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    key: Mapped[str | None] = mapped_column(sa.String(200))
    key_scope: Mapped[str | None] = mapped_column(sa.String(64))
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))


class Certificate(IdMixin, OrgMixin, Base):
    """A certificate of service hours as issued (the hours it states, for verification)."""

    __tablename__ = "volunteer_certificate"
    __table_args__ = (sa.UniqueConstraint("org_id", "number"),)

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    #: What people read aloud and type (``XK7F-9M2Q-4T``), unique in the organisation.
    number: Mapped[str] = mapped_column(sa.String(16))
    hours: Mapped[Decimal] = mapped_column()
    period_from: Mapped[dt.date | None] = mapped_column(sa.Date)
    period_to: Mapped[dt.date | None] = mapped_column(sa.Date)
    issued_at: Mapped[dt.datetime] = mapped_column()
    issued_by: Mapped[str] = mapped_column(sa.String(40))
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


#: An image's bytes: MySQL's and MariaDB's plain BLOB holds 64 KB, MEDIUMBLOB 16 MB.
IMAGE_BYTES = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


class CertificateImage(OrgMixin, Base):
    """The organisation's logo or seal (公章) printed on its certificates, checked on upload."""

    __tablename__ = "volunteer_certificate_image"
    __table_args__ = (sa.PrimaryKeyConstraint("org_id", "kind"),)

    kind: Mapped[str] = mapped_column(sa.String(8))  # "logo" or "seal"
    media_type: Mapped[str] = mapped_column(sa.String(20))
    width: Mapped[int] = mapped_column()
    height: Mapped[int] = mapped_column()
    data: Mapped[bytes] = mapped_column(IMAGE_BYTES)
    uploaded_at: Mapped[dt.datetime] = mapped_column()
    uploaded_by: Mapped[str] = mapped_column(sa.String(40))


# --- tasks ------------------------------------------------------------------------------


class Task(IdMixin, OrgMixin, TimestampMixin, Base):
    """Work that is not a shift: a quantity (pieces or hours) split into assignments.

    ``assigned`` is the quantity offered or accepted in open assignments, ``done`` what
    reviewers accepted; both change by guarded UPDATEs so ``assigned <= quantity``.
    """

    __tablename__ = "volunteer_task"

    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    activity_id: Mapped[uuid.UUID | None] = mapped_column()
    unit: Mapped[str] = mapped_column(sa.String(16), default="pieces")
    quantity: Mapped[Decimal] = mapped_column()
    assigned: Mapped[Decimal] = mapped_column(default=Decimal(0))
    done: Mapped[Decimal] = mapped_column(default=Decimal(0))
    due_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")


class Assignment(IdMixin, OrgMixin, TimestampMixin, Base):
    """A share of a task given to one volunteer or worker."""

    __tablename__ = "volunteer_assignment"

    task_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("volunteer_task.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    quantity: Mapped[Decimal] = mapped_column()
    progress: Mapped[Decimal] = mapped_column(default=Decimal(0))
    status: Mapped[str] = mapped_column(sa.String(16), default="offered")
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    accepted_quantity: Mapped[Decimal | None] = mapped_column()
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(40))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column()
