"""The boundary of the points module: input models (validated) and read models (returned)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ngo_kit.errors import register_rule_messages
from ngo_kit.schemas import (
    InputModel,
    Instant,
    Integer,
    Name,
    Prose,
    ReadModel,
    Text,
    WebUrl,
    no_control_characters,
)

#: Largest number of points one operation may move (keeps sums far from BIGINT overflow).
MAX_POINTS = 1_000_000_000

register_rule_messages(
    {
        "transfer_to_self": "must be another member than the sender",
        "window_ends_before_start": "must be after the start of the window",
        "per_unit_and_formula": "give either per_unit or formula, not both",
        "bad_formula": "is not a valid formula: {detail}",
        "unknown_rule_type": "is not a registered rule type: {rule_type}",
        "badge_criteria_incomplete": "criteria '{criteria}' needs {needs}",
        "above_manual_award_max": "must be at most {max} for a manual award",
    }
)


def _text(value: str) -> str:
    return no_control_characters(value)


Points = Field(gt=0, le=MAX_POINTS)


class AwardIn(InputModel):
    """Points for a member (``points.award``); ``rule`` names a manual rule whose caps apply."""

    member_id: uuid.UUID
    points: Integer = Points
    reason: Text = Field(default="", max_length=300)
    reference: Text = Field(default="", max_length=200)
    key: Text | None = Field(default=None, min_length=1, max_length=200)
    rule: Text | None = Field(default=None, max_length=63)

    _reason = field_validator("reason", "reference")(lambda cls, v: _text(v))


class DeductIn(InputModel):
    """Points taken from a member (``points.adjust``)."""

    member_id: uuid.UUID
    points: Integer = Points
    reason: Text = Field(default="", max_length=300)
    reference: Text = Field(default="", max_length=200)
    key: Text | None = Field(default=None, min_length=1, max_length=200)

    _reason = field_validator("reason", "reference")(lambda cls, v: _text(v))


class TransferIn(InputModel):
    """Points given by one member to another (a tip), when the organisation allows it."""

    from_member: uuid.UUID
    to_member: uuid.UUID
    points: Integer = Points
    reason: Text = Field(default="", max_length=300)
    key: Text | None = Field(default=None, min_length=1, max_length=200)

    _reason = field_validator("reason")(lambda cls, v: _text(v))

    @model_validator(mode="after")
    def _different(self) -> TransferIn:
        if self.from_member == self.to_member:
            raise PydanticCustomError(
                "transfer_to_self",
                "must be another member than the sender",
                {"field": "to_member"},
            )
        return self


class BatchAwardIn(InputModel):
    """The same kind of award to many members at once: ``awards`` maps member id to points."""

    awards: dict[uuid.UUID, Integer] = Field(min_length=1, max_length=100_000)
    reason: Text = Field(default="", max_length=300)
    reference: Text = Field(default="", max_length=200)
    key: Text | None = Field(default=None, min_length=1, max_length=150)

    _reason = field_validator("reason", "reference")(lambda cls, v: _text(v))

    @field_validator("awards")
    @classmethod
    def _positive(cls, value: dict[uuid.UUID, int]) -> dict[uuid.UUID, int]:
        for points in value.values():
            if not 0 < points <= MAX_POINTS:
                raise PydanticCustomError("greater_than", "must be greater than {gt}", {"gt": 0})
        return value


class SettingsIn(InputModel):
    """The organisation's points settings; fields left out stay as they are."""

    expiry_months: Integer | None = Field(default=None, ge=0, le=240)
    transfers_allowed: bool | None = None


class RuleIn(InputModel):
    """An earning rule: a registered ``rule_type``, a fixed amount, per unit or a formula."""

    name: Name = Field(min_length=1, max_length=63)
    rule_type: Text = Field(min_length=1, max_length=63)
    points: Integer = Field(default=0, ge=0, le=MAX_POINTS)
    per_unit: Text | None = Field(default=None, max_length=63)
    formula: Text | None = Field(default=None, max_length=500)
    cap_day: Integer | None = Field(default=None, gt=0)
    cap_week: Integer | None = Field(default=None, gt=0)
    cap_month: Integer | None = Field(default=None, gt=0)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    active: bool = True
    reason: Text = Field(default="", max_length=300)

    _name = field_validator("name", "reason")(lambda cls, v: _text(v))

    @model_validator(mode="after")
    def _consistent(self) -> RuleIn:
        if self.per_unit and self.formula:
            raise PydanticCustomError(
                "per_unit_and_formula", "give either per_unit or formula", {"field": "formula"}
            )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise PydanticCustomError(
                "window_ends_before_start",
                "must be after the start of the window",
                {"field": "ends_at"},
            )
        return self


class RewardIn(InputModel):
    """A catalogue reward: price in points, stock (None = unlimited), limits, window, two languages."""

    code: Text = Field(min_length=1, max_length=63)
    name: Name = Field(min_length=1, max_length=200)
    name_zh: Name = Field(default="", max_length=200)
    description: Prose = Field(default="", max_length=5000)
    description_zh: Prose = Field(default="", max_length=5000)
    image_url: WebUrl = Field(default="", max_length=500)
    price: Integer = Points
    stock: Integer | None = Field(default=None, ge=0, le=MAX_POINTS)
    per_member_limit: Integer | None = Field(default=None, gt=0)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    active: bool = True

    _name = field_validator("code", "name", "name_zh", "image_url")(lambda cls, v: _text(v))

    @model_validator(mode="after")
    def _window(self) -> RewardIn:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise PydanticCustomError(
                "window_ends_before_start",
                "must be after the start of the window",
                {"field": "ends_at"},
            )
        return self


class RewardUpdate(InputModel):
    """Changes to a reward; fields left out stay as they are. ``add_stock`` may be negative."""

    name: Name | None = Field(default=None, min_length=1, max_length=200)
    name_zh: Name | None = Field(default=None, max_length=200)
    description: Prose | None = Field(default=None, max_length=5000)
    description_zh: Prose | None = Field(default=None, max_length=5000)
    image_url: WebUrl | None = Field(default=None, max_length=500)
    price: Integer | None = Field(default=None, gt=0, le=MAX_POINTS)
    add_stock: Integer | None = Field(default=None, ge=-MAX_POINTS, le=MAX_POINTS)
    per_member_limit: Integer | None = Field(default=None, gt=0)
    active: bool | None = None


class RedeemIn(InputModel):
    """A member redeeming ``quantity`` of a reward (by id)."""

    reward_id: uuid.UUID
    member_id: uuid.UUID
    quantity: Integer = Field(default=1, gt=0, le=1000)
    key: Text | None = Field(default=None, min_length=1, max_length=200)


class LevelIn(InputModel):
    """A level reached at ``threshold`` lifetime earned points."""

    name: Name = Field(min_length=1, max_length=100)
    threshold: Integer = Field(ge=0, le=10**15)

    _name = field_validator("name")(lambda cls, v: _text(v))


class BadgeIn(InputModel):
    """A badge: ``manual``, ``threshold`` (lifetime earned) or ``event_count`` (of rule events)."""

    code: Text = Field(min_length=1, max_length=63)
    name: Name = Field(min_length=1, max_length=200)
    description: Prose = Field(default="", max_length=5000)
    image_url: WebUrl = Field(default="", max_length=500)
    criteria: Literal["manual", "threshold", "event_count"] = "manual"
    threshold: Integer | None = Field(default=None, gt=0)
    event: Text | None = Field(default=None, max_length=63)

    _name = field_validator("code", "name")(lambda cls, v: _text(v))

    @model_validator(mode="after")
    def _needs(self) -> BadgeIn:
        if self.criteria in ("threshold", "event_count") and self.threshold is None:
            raise PydanticCustomError(
                "badge_criteria_incomplete",
                "criteria '{criteria}' needs {needs}",
                {"criteria": self.criteria, "needs": "threshold", "field": "threshold"},
            )
        if self.criteria == "event_count" and not self.event:
            raise PydanticCustomError(
                "badge_criteria_incomplete",
                "criteria '{criteria}' needs {needs}",
                {"criteria": self.criteria, "needs": "event", "field": "event"},
            )
        return self


# --- read models ------------------------------------------------------------------------


class TransactionRead(ReadModel):
    """One operation as seen from its member: ``points`` moved and ``balance_after`` it."""

    id: uuid.UUID
    kind: str
    member_id: uuid.UUID | None
    counterparty_id: uuid.UUID | None = None
    points: int
    balance_after: int | None
    reason: str
    reference: str
    key: str | None
    rule: str | None = None
    reverses_id: uuid.UUID | None = None
    created_at: dt.datetime


class EntryRead(ReadModel):
    """One line of a member's statement, with the running balance after it."""

    id: uuid.UUID
    seq: int
    txn_id: uuid.UUID
    kind: str
    amount: int
    balance_after: int
    reason: str
    reference: str
    actor: str
    at: dt.datetime


class LotRead(ReadModel):
    """Points of one lot still to spend, and when they expire (None: never)."""

    id: uuid.UUID
    remaining: int
    earned_at: dt.datetime
    expires_at: dt.datetime | None


class SettingsRead(ReadModel):
    """The organisation's points settings."""

    expiry_months: int | None
    transfers_allowed: bool
    #: True once levels or threshold badges exist, so awards check them.
    recognition: bool = False


class RuleRead(ReadModel):
    """An earning rule."""

    id: uuid.UUID
    name: str
    rule_type: str
    event: str
    points: int
    per_unit: str | None
    formula: str | None
    cap_day: int | None
    cap_week: int | None
    cap_month: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    active: bool
    reason: str


class RewardRead(ReadModel):
    """A catalogue reward (``stock`` None = unlimited)."""

    id: uuid.UUID
    code: str
    name: str
    name_zh: str
    description: str
    description_zh: str
    image_url: str
    price: int
    stock: int | None
    per_member_limit: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    active: bool


class RedemptionRead(ReadModel):
    """A redemption and its state: ``requested``, ``fulfilled`` or ``cancelled``."""

    id: uuid.UUID
    reward_id: uuid.UUID
    member_id: uuid.UUID
    quantity: int
    points: int
    status: str
    key: str | None
    txn_id: uuid.UUID
    refund_txn_id: uuid.UUID | None
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime


class LevelRead(ReadModel):
    """A level and its threshold."""

    id: uuid.UUID
    name: str
    threshold: int


class BadgeRead(ReadModel):
    """A badge and its criteria."""

    id: uuid.UUID
    code: str
    name: str
    description: str
    image_url: str
    criteria: str
    threshold: int | None
    event: str | None


class BadgeAwardRead(ReadModel):
    """A badge held by a member."""

    id: uuid.UUID
    badge_id: uuid.UUID
    badge_code: str
    member_id: uuid.UUID
    awarded_at: dt.datetime


class StandingRead(ReadModel):
    """A member's balance, lifetime earned points and current level (None below every level)."""

    member_id: uuid.UUID
    balance: int
    earned: int
    level: str | None


class LeaderboardRow(ReadModel):
    """One row of a leaderboard: equal points share a rank (1, 2, 2, 4)."""

    rank: int
    member_id: uuid.UUID
    points: int


Period = Literal["week", "month", "all"]
