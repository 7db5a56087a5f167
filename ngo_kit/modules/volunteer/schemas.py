"""The volunteer module's boundary: input models (validated) and read models (returned)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ngo_kit.errors import register_rule_messages
from ngo_kit.exports import plain_decimal
from ngo_kit.schemas import (
    Amount,
    Day,
    InputModel,
    Integer,
    Moment,
    Name,
    Prose,
    ReadModel,
    Text,
    no_control_characters,
)

register_rule_messages(
    {
        "invalid_skill_code": "must be 1 to 63 lowercase letters, digits or underscores",
        "ends_before_start": "must be after the start",
        "invalid_time_window": "must be HH:MM-HH:MM windows with the end after the start",
        "capacity_mismatch": "must equal the sum of the roles' capacities",
        "invalid_rrule": "is not a valid recurrence rule: {error}",
        "too_many_shifts": "would create more than {limit} shifts",
        "invalid_coordinates": "must be a latitude in -90..90 and a longitude in -180..180",
        "not_positive_amount": "must be greater than zero",
    }
)

_CODE = re.compile(r"^[a-z0-9_]{1,63}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

ProfileStatus = Literal["applicant", "approved", "inactive"]


def _code(value: str) -> str:
    if not _CODE.match(value):
        raise PydanticCustomError("invalid_skill_code", "must be lowercase letters, digits or _")
    return value


def _codes(values: list[str]) -> list[str]:
    return sorted({_code(v) for v in values})


def _text(value: str) -> str:
    return no_control_characters(value)


class _Part(BaseModel):
    """Base of models nested inside an input model (errors then keep their full location)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class AvailabilityWindow(_Part):
    """A weekly window in the organisation's time zone: ``weekday`` 0 = Monday."""

    weekday: Integer = Field(ge=0, le=6)
    start: Text
    end: Text

    @model_validator(mode="after")
    def _order(self) -> AvailabilityWindow:
        if not (_HHMM.match(self.start) and _HHMM.match(self.end)) or self.end <= self.start:
            raise PydanticCustomError("invalid_time_window", "bad window", {"field": "end"})
        return self


class ProfileIn(InputModel):
    """A volunteer profile (create or replace). ``skills`` maps skill code to level 1..5."""

    user_id: uuid.UUID
    skills: dict[Text, Integer] = Field(default_factory=dict)
    languages: list[Text] = Field(default_factory=list, max_length=20)
    city: Text = Field(default="", max_length=100)
    district: Text = Field(default="", max_length=100)
    latitude: Amount | None = Field(default=None, ge=-90, le=90)
    longitude: Amount | None = Field(default=None, ge=-180, le=180)
    availability: list[AvailabilityWindow] = Field(default_factory=list, max_length=50)
    unavailable_dates: list[Day] = Field(default_factory=list, max_length=366)
    emergency_contact_name: Name = Field(default="", max_length=200)
    emergency_contact_phone: Text = Field(default="", max_length=40)
    certifications: dict[Text, Day | None] = Field(default_factory=dict)
    custom_fields: dict[Text, Any] = Field(default_factory=dict)

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: dict[str, int]) -> dict[str, int]:
        for code, level in value.items():
            _code(code)
            if not 1 <= level <= 5:
                raise PydanticCustomError("less_than_equal", "level 1..5", {"le": 5})
        return value

    @field_validator("certifications")
    @classmethod
    def _certs(cls, value: dict[str, dt.date | None]) -> dict[str, dt.date | None]:
        for code in value:
            _code(code)
        return value

    @field_validator("city", "district", "emergency_contact_name", "emergency_contact_phone")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _text(value)


class ActivityIn(InputModel):
    """A new activity (project or event)."""

    title: Name = Field(min_length=1, max_length=200)
    description: Prose = Field(default="", max_length=10_000)
    place: Text = Field(default="", max_length=300)

    _title = field_validator("title", "place")(lambda cls, v: _text(v))


class RoleIn(_Part):
    """A role within a shift: ``name`` and how many people it needs."""

    name: Name = Field(min_length=1, max_length=63)
    capacity: Integer = Field(ge=1, le=10_000)
    required_skills: list[Text] = Field(default_factory=list)

    _skills = field_validator("required_skills")(lambda cls, v: _codes(v))
    _name = field_validator("name")(lambda cls, v: _text(v))


class ShiftIn(InputModel):
    """A shift. Naive times are read in the organisation's time zone.

    Give ``capacity``, or ``roles`` (whose capacities add up to the shift's), or both equal.
    """

    activity_id: uuid.UUID
    starts_at: Moment
    ends_at: Moment
    capacity: Integer | None = Field(default=None, ge=1, le=100_000)
    roles: list[RoleIn] = Field(default_factory=list, max_length=50)
    place: Text = Field(default="", max_length=300)
    city: Text = Field(default="", max_length=100)
    district: Text = Field(default="", max_length=100)
    latitude: Amount | None = Field(default=None, ge=-90, le=90)
    longitude: Amount | None = Field(default=None, ge=-180, le=180)
    required_skills: list[Text] = Field(default_factory=list)
    required_certifications: list[Text] = Field(default_factory=list)
    min_age: Integer | None = Field(default=None, ge=0, le=120)
    cancel_cutoff_hours: Integer = Field(default=0, ge=0, le=24 * 60)

    _skills = field_validator("required_skills", "required_certifications")(
        lambda cls, v: _codes(v)
    )

    @model_validator(mode="after")
    def _check(self) -> ShiftIn:
        if self.ends_at <= self.starts_at:
            raise PydanticCustomError(
                "ends_before_start", "ends before it starts", {"field": "ends_at"}
            )
        if self.roles:
            total = sum(r.capacity for r in self.roles)
            if self.capacity is not None and self.capacity != total:
                raise PydanticCustomError(
                    "capacity_mismatch", "capacity != sum of roles", {"field": "capacity"}
                )
        elif self.capacity is None:
            raise PydanticCustomError("missing", "capacity is required", {"field": "capacity"})
        return self

    @property
    def total_capacity(self) -> int:
        """The shift's capacity (from the roles when it has any)."""
        return sum(r.capacity for r in self.roles) if self.roles else int(self.capacity or 0)


class RecurringShiftsIn(InputModel):
    """Shifts repeating by an iCalendar RRULE (``FREQ=WEEKLY;BYDAY=SA;COUNT=10``).

    ``first`` is the first shift; each occurrence keeps its local start time and duration.
    """

    first: ShiftIn
    rule: Text = Field(min_length=5, max_length=500)
    limit: Integer = Field(default=366, ge=1, le=1000)


class ClaimIn(InputModel):
    """Hours a volunteer reports for themselves."""

    served_on: Day
    hours: Amount = Field(gt=0, le=24, decimal_places=2)
    activity_id: uuid.UUID | None = None
    description: Prose = Field(default="", max_length=500)
    user_id: uuid.UUID | None = None
    key: Text | None = Field(default=None, max_length=200)


class TaskIn(InputModel):
    """A task: ``quantity`` pieces (or hours) to be split into assignments."""

    title: Name = Field(min_length=1, max_length=200)
    quantity: Amount = Field(gt=0, le=Decimal("1e12"), decimal_places=4)
    unit: Literal["pieces", "hours"] = "pieces"
    description: Prose = Field(default="", max_length=10_000)
    activity_id: uuid.UUID | None = None
    due_on: Day | None = None

    _title = field_validator("title")(lambda cls, v: _text(v))


# --- read models ------------------------------------------------------------------------


class SkillRead(ReadModel):
    """A skill on the organisation's list."""

    code: str
    name: str


class ProfileRead(ReadModel):
    """A volunteer profile."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    skills: dict[str, int]
    certifications: dict[str, dt.date | None]
    languages: list[str]
    city: str
    district: str
    latitude: Decimal | None
    longitude: Decimal | None
    availability: list[dict[str, Any]]
    unavailable_dates: list[dt.date]
    emergency_contact_name: str
    emergency_contact_phone: str
    custom_fields: dict[str, Any]
    hours_total: Decimal
    attended_count: int
    no_show_count: int
    approved_at: dt.datetime | None


class ActivityRead(ReadModel):
    """An activity."""

    id: uuid.UUID
    title: str
    description: str
    place: str
    status: str
    created_at: dt.datetime


class RoleRead(ReadModel):
    """A role within a shift."""

    id: uuid.UUID
    name: str
    capacity: int
    taken: int
    required_skills: list[str]


class ShiftRead(ReadModel):
    """A shift, with its places taken and its roles."""

    id: uuid.UUID
    activity_id: uuid.UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    place: str
    city: str
    district: str
    latitude: Decimal | None
    longitude: Decimal | None
    capacity: int
    taken: int
    required_skills: list[str]
    required_certifications: list[str]
    min_age: int | None
    cancel_cutoff_hours: int
    status: str
    roles: tuple[RoleRead, ...] = ()

    @property
    def hours(self) -> Decimal:
        """The shift's length in hours."""
        return Decimal((self.ends_at - self.starts_at).total_seconds()) / Decimal(3600)


class SignUpRead(ReadModel):
    """A place on a shift. ``position`` is the place in the waitlist (1 = next), else None."""

    id: uuid.UUID
    shift_id: uuid.UUID
    role_id: uuid.UUID | None
    user_id: uuid.UUID
    status: str
    seq: int
    created_at: dt.datetime
    checked_in_at: dt.datetime | None = None
    checked_out_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    promoted_at: dt.datetime | None = None
    position: int | None = None


class HoursRead(ReadModel):
    """One entry of the hours ledger (negative hours reverse an earlier entry)."""

    id: uuid.UUID
    seq: int
    at: dt.datetime
    user_id: uuid.UUID
    hours: Decimal
    source: str
    activity_id: uuid.UUID | None
    shift_id: uuid.UUID | None
    signup_id: uuid.UUID | None
    claim_id: uuid.UUID | None
    assignment_id: uuid.UUID | None
    reverses_id: uuid.UUID | None
    served_on: dt.date
    recorded_by: str
    note: str


class ClaimRead(ReadModel):
    """A self-reported hours claim and its decision."""

    id: uuid.UUID
    user_id: uuid.UUID
    activity_id: uuid.UUID | None
    served_on: dt.date
    hours: Decimal
    description: str
    status: str
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str


class AttendanceRead(ReadModel):
    """What completing a shift recorded."""

    shift_id: uuid.UUID
    attended: tuple[uuid.UUID, ...]
    no_shows: tuple[uuid.UUID, ...]
    hours: tuple[HoursRead, ...]


#: Hours as people read them: JSON carries ``"8"`` or ``"7.5"``, never ``"8.0000"``.
PlainHours = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{plain_decimal(v):f}", return_type=str, when_used="json"),
]


class CertificateRead(ReadModel):
    """A certificate of service hours; ``token`` goes in the verification link and QR code.

    ``number`` is what people read aloud (``XK7F-9M2Q-4T``); ``verify_url`` is the absolute
    link, or ``None`` when the kit has no ``public_base_url`` (a relative link is never given).
    """

    id: uuid.UUID
    number: str
    user_id: uuid.UUID
    hours: PlainHours
    period_from: dt.date | None
    period_to: dt.date | None
    issued_at: dt.datetime
    token: str
    verify_url: str | None


class CertificateCheck(ReadModel):
    """What ``verify_certificate`` tells a third party."""

    certificate_id: uuid.UUID
    number: str
    user_id: uuid.UUID
    name: str
    organisation: str
    hours: PlainHours
    period_from: dt.date | None
    period_to: dt.date | None
    issued_at: dt.datetime


class CertificateStatus(ReadModel):
    """What a verification page shows: ``valid`` with the certificate's own statements,
    ``revoked`` with its number and organisation only, or ``unknown``."""

    status: Literal["valid", "revoked", "unknown"]
    number: str | None = None
    organisation: str | None = None
    revoked_at: dt.datetime | None = None
    check: CertificateCheck | None = None


class CertificateImageRead(ReadModel):
    """An image printed on the organisation's certificates: ``logo`` or ``seal``."""

    kind: str
    media_type: str
    width: int
    height: int
    size: int


class MatchFactor(ReadModel):
    """One part of a match score: its name, its weighted points and why."""

    name: str
    score: float
    reason: str


class MatchRead(ReadModel):
    """A candidate for a shift (or a shift for a volunteer), best first, with the reasons."""

    user_id: uuid.UUID
    shift_id: uuid.UUID
    score: float
    factors: tuple[MatchFactor, ...]


class TaskRead(ReadModel):
    """A task and how much of it is assigned and done."""

    id: uuid.UUID
    title: str
    description: str
    activity_id: uuid.UUID | None
    unit: str
    quantity: Decimal
    assigned: Decimal
    done: Decimal
    due_on: dt.date | None
    status: str


class AssignmentRead(ReadModel):
    """A volunteer's share of a task."""

    id: uuid.UUID
    task_id: uuid.UUID
    user_id: uuid.UUID
    quantity: Decimal
    progress: Decimal
    status: str
    note: str
    accepted_quantity: Decimal | None
    reviewed_by: str | None
    reviewed_at: dt.datetime | None


class ImportReport(ReadModel):
    """The result of an import: rows read, profiles written, rows refused (``rows`` is always
    ``imported + refused``), and ``errors``: (line, reason) of each refused row, unless the
    import handed them to its ``on_refused`` callback instead."""

    rows: int
    imported: int
    refused: int
    errors: tuple[tuple[int, str], ...]
