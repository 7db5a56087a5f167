"""The inventory module's boundary: input models (validated) and read models (returned)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from ngo_kit.db import QUANTITY_PRECISION, QUANTITY_SCALE
from ngo_kit.errors import register_rule_messages
from ngo_kit.schemas import (
    Day,
    InputModel,
    Instant,
    Integer,
    Name,
    Prose,
    ReadModel,
    Text,
    no_control_characters,
)

register_rule_messages(
    {
        "lot_required": "names no lot, but the item is tracked by lot",
        "lot_not_tracked": "names a lot, but the item is not tracked by lot",
        "unknown_unit": "is not a unit of this item: {unit}",
        "not_a_stock_location": "must be a location that holds stock",
        "same_location": "must differ from the location the goods leave",
        "already_reversed": "was reversed already",
        "not_reversible": "is a reversal and cannot be reversed again",
        "needs_second_approval": "is above {threshold}: a second approver is needed",
        "same_approver": "must be a different person from the first approver",
        "wrong_state": "is {state}; this needs {expected}",
        "need_closed": "is not open",
        "need_other_item": "is a need for another item",
        "unknown_format": "must be csv or xlsx",
        "bad_file": "could not be read: {error}",
        "upload_content_type": "must be the file itself, sent as application/octet-stream, text/csv or the XLSX type",
        "duplicate_in_file": "appears twice in the file: {value}",
        "code_taken": "is taken already: {value}",
        "unknown_reference": "names nothing that exists: {value}",
        "empty_document": "has no lines",
        "float_not_allowed": "must be a decimal number given as Decimal, int or text, not a float",
        "code_like_id": "must not be written like an id (a UUID)",
    }
)


def _not_like_an_id(value: str) -> str:
    """Items and locations are looked up by id or by code: a code that reads as a UUID would
    stand for another row's id, so it is refused."""
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise PydanticCustomError("code_like_id", "must not be written like an id")


Code = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$"),
    AfterValidator(_not_like_an_id),
]
Ref = Annotated[Text, Field(min_length=1, max_length=200)]


def _no_float(value: Any) -> Any:
    """Quantities are exact: a float (0.1 + 0.2) is refused at the boundary."""
    if isinstance(value, float):
        raise PydanticCustomError("float_not_allowed", "must not be a float")
    return value


NoFloat = BeforeValidator(_no_float)
PositiveQuantity = Annotated[
    Decimal, NoFloat, Field(gt=0, max_digits=QUANTITY_PRECISION, decimal_places=QUANTITY_SCALE)
]
NonNegativeQuantity = Annotated[
    Decimal, NoFloat, Field(ge=0, max_digits=QUANTITY_PRECISION, decimal_places=QUANTITY_SCALE)
]
RecipientKind = Literal["beneficiary", "household", "project", "activity", "site"]


def _text(value: str | None) -> str | None:
    return None if value is None else no_control_characters(value)


class CategoryIn(InputModel):
    """A new category."""

    code: Code
    name: Name = Field(min_length=1, max_length=200)
    name_zh: Name = Field(default="", max_length=200)

    _t = field_validator("name", "name_zh")(classmethod(lambda cls, v: _text(v)))


class ItemIn(InputModel):
    """A new catalogue item. ``pack_units`` maps a pack name to base units (``{"box": 12}``)."""

    code: Code
    name: Name = Field(min_length=1, max_length=200)
    name_zh: Name = Field(default="", max_length=200)
    category: Text | None = Field(default=None, max_length=63)
    unit: Text = Field(default="piece", min_length=1, max_length=31)
    pack_units: dict[Text, PositiveQuantity] = Field(default_factory=dict)
    tracked_by_lot: bool = False
    perishable: bool = False
    shelf_life_days: Integer | None = Field(default=None, gt=0, le=36500)
    reorder_level: NonNegativeQuantity | None = None
    allow_negative: bool = False

    _t = field_validator("name", "name_zh", "unit")(classmethod(lambda cls, v: _text(v)))


class LocationIn(InputModel):
    """A new real location; ``parent`` is the code of the location it sits in."""

    code: Code
    name: Name = Field(min_length=1, max_length=200)
    parent: Text | None = Field(default=None, max_length=63)

    _t = field_validator("name")(classmethod(lambda cls, v: _text(v)))


class _MoveIn(InputModel):
    item: Text = Field(min_length=1, max_length=63)
    quantity: PositiveQuantity
    unit: Text | None = Field(default=None, max_length=31)
    lot: Text | None = Field(default=None, min_length=1, max_length=63)
    notes: Prose = Field(default="", max_length=2000)
    key: Text | None = Field(default=None, min_length=1, max_length=200)


class ReceiveIn(_MoveIn):
    """Goods in (入库) from a donor or supplier."""

    to: Text = Field(min_length=1, max_length=63)
    donor: Ref | None = None
    donation: Ref | None = None
    expires_on: Day | None = None
    unit_value: NonNegativeQuantity | None = None
    attachments: list[Annotated[Text, Field(max_length=500)]] = Field(
        default_factory=list, max_length=20
    )

    _t = field_validator("donor", "donation")(classmethod(lambda cls, v: _text(v)))


class IssueIn(_MoveIn):
    """Goods out (出库) to a beneficiary, household, project, activity or site."""

    from_: Text = Field(min_length=1, max_length=63)
    recipient: Ref
    recipient_kind: RecipientKind = "beneficiary"
    approved_by: Ref | None = None
    second_approved_by: Ref | None = None
    need: uuid.UUID | None = None

    _t = field_validator("recipient")(classmethod(lambda cls, v: _text(v)))


class TransferIn(_MoveIn):
    """Stock moved between the organisation's own locations (调拨)."""

    from_: Text = Field(min_length=1, max_length=63)
    to: Text = Field(min_length=1, max_length=63)


class ScrapIn(_MoveIn):
    """Goods destroyed, expired or lost (报损)."""

    from_: Text = Field(min_length=1, max_length=63)
    reason: Text = Field(min_length=1, max_length=500)


class AdjustIn(InputModel):
    """A stocktake count (盘点): the difference to the books is posted with ``reason``."""

    item: Text = Field(min_length=1, max_length=63)
    location: Text = Field(min_length=1, max_length=63)
    counted: NonNegativeQuantity
    lot: Text | None = Field(default=None, min_length=1, max_length=63)
    expires_on: Day | None = None
    reason: Text = Field(min_length=1, max_length=500)
    key: Text | None = Field(default=None, min_length=1, max_length=200)


class NeedIn(InputModel):
    """A request for an item by a beneficiary, site or project."""

    item: Text = Field(min_length=1, max_length=63)
    quantity: PositiveQuantity
    requester: Ref
    requester_kind: Literal["beneficiary", "household", "site", "project", "activity"] = "site"
    priority: Integer = Field(default=3, ge=1, le=5)
    note: Prose = Field(default="", max_length=2000)


class DocumentLineIn(InputModel):
    """One line of a receipt or dispatch."""

    item: Text = Field(min_length=1, max_length=63)
    quantity: PositiveQuantity
    unit: Text | None = Field(default=None, max_length=31)
    lot: Text | None = Field(default=None, min_length=1, max_length=63)
    expires_on: Day | None = None
    unit_value: NonNegativeQuantity | None = None


class DocumentIn(InputModel):
    """A multi-line receipt (goods in) or dispatch (goods out), created as a draft."""

    kind: Literal["receipt", "dispatch"]
    reference: Text = Field(min_length=1, max_length=100)
    location: Text = Field(min_length=1, max_length=63)
    lines: list[DocumentLineIn] = Field(min_length=1, max_length=500)
    donor: Ref | None = None
    donation: Ref | None = None
    recipient: Ref | None = None
    recipient_kind: RecipientKind | None = None
    need: uuid.UUID | None = None
    notes: Prose = Field(default="", max_length=2000)

    @field_validator("reference")
    @classmethod
    def _ref(cls, value: str) -> str:
        return no_control_characters(value)


class HistoryFilter(InputModel):
    """Filters for the movement history; every field is optional."""

    item: Text | None = None
    location: Text | None = None
    kind: Text | None = None
    donation: Text | None = None
    recipient: Text | None = None
    since: Instant | None = None
    until: Instant | None = None
    limit: Integer = Field(default=100, ge=1, le=10000)
    offset: Integer = Field(default=0, ge=0)


# --- read models --------------------------------------------------------------------------


class CategoryRead(ReadModel):
    """A category."""

    id: uuid.UUID
    code: str
    name: str
    name_zh: str


class ItemRead(ReadModel):
    """A catalogue item."""

    id: uuid.UUID
    code: str
    name: str
    name_zh: str
    category_id: uuid.UUID | None
    unit: str
    tracked_by_lot: bool
    perishable: bool
    shelf_life_days: int | None
    reorder_level: Decimal | None
    allow_negative: bool
    pack_units: dict[str, Decimal] = Field(default_factory=dict)


class LocationRead(ReadModel):
    """A location, real or virtual."""

    id: uuid.UUID
    code: str
    name: str
    kind: str
    parent_id: uuid.UUID | None


class LotRead(ReadModel):
    """A lot."""

    id: uuid.UUID
    item_id: uuid.UUID
    code: str
    expires_on: dt.date | None


class Source(ReadModel):
    """Part of a move's quantity and the source (receipt) it came from."""

    source_id: uuid.UUID | None
    quantity: Decimal


class MoveRead(ReadModel):
    """One stock move."""

    id: uuid.UUID
    seq: int
    at: dt.datetime
    kind: str
    group_id: uuid.UUID
    item_id: uuid.UUID
    lot_id: uuid.UUID | None
    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    quantity: Decimal
    unit_value: Decimal | None = None
    donor_ref: str | None = None
    donation_ref: str | None = None
    recipient_ref: str | None = None
    recipient_kind: str | None = None
    approved_by: str | None = None
    second_approved_by: str | None = None
    need_id: uuid.UUID | None = None
    document_id: uuid.UUID | None = None
    reason: str = ""
    notes: str = ""
    attachments: list[Any] = Field(default_factory=list)
    reverses_id: uuid.UUID | None = None
    actor: str
    sources: tuple[Source, ...] = ()


class Operation(ReadModel):
    """What a receive, issue, transfer, adjust, scrap or reverse call did: its moves."""

    group_id: uuid.UUID
    moves: tuple[MoveRead, ...]

    @property
    def quantity(self) -> Decimal:
        """The total quantity moved."""
        return sum((m.quantity for m in self.moves), Decimal(0))


class StockLine(ReadModel):
    """Stock on hand of one item at one location and lot."""

    item_id: uuid.UUID
    item_code: str
    category_code: str | None
    location_id: uuid.UUID
    location_code: str
    lot_id: uuid.UUID | None
    lot_code: str | None
    expires_on: dt.date | None
    quantity: Decimal
    value: Decimal | None = None


class TraceLine(ReadModel):
    """Where part of a donation went: one move of its goods out of the organisation."""

    move_id: uuid.UUID
    at: dt.datetime
    kind: str
    item_code: str
    lot_code: str | None
    quantity: Decimal
    destination: str
    recipient_kind: str | None
    recipient: str | None
    approved_by: str | None
    second_approved_by: str | None
    reverses_id: uuid.UUID | None = None


class DonationRead(ReadModel):
    """A donation received: its reference, donor and when its goods first arrived."""

    donation: str
    donor: str | None
    first_received_at: dt.datetime


class TraceReport(ReadModel):
    """Where a donation's goods went (物资流向追溯报告), exact to the unit.

    ``received`` = ``sum(lines)`` (net of reversals) + ``on_hand`` + ``returned`` (receipts
    reversed back to the donor).
    """

    donation: str
    donor: str | None
    donor_facing: bool
    received: Decimal
    returned: Decimal
    on_hand: Decimal
    distributed: Decimal
    scrapped: Decimal
    adjusted: Decimal
    lines: tuple[TraceLine, ...]


class IssueSource(ReadModel):
    """For an issue: a donation (receipt) its goods came from."""

    source_id: uuid.UUID | None
    kind: str | None
    donor: str | None
    donation: str | None
    lot_code: str | None
    received_at: dt.datetime | None
    quantity: Decimal


class NeedRead(ReadModel):
    """A need and how much of it is fulfilled."""

    id: uuid.UUID
    item_id: uuid.UUID
    quantity: Decimal
    fulfilled: Decimal
    requester_ref: str
    requester_kind: str
    priority: int
    state: str
    note: str
    created_at: dt.datetime


class NeedGap(ReadModel):
    """Open needs of one item against stock on hand: what to ask donors for."""

    item_id: uuid.UUID
    item_code: str
    needed: Decimal
    on_hand: Decimal
    shortfall: Decimal


class ExpiringLot(ReadModel):
    """A lot with stock that expires within the window."""

    lot_id: uuid.UUID
    lot_code: str
    item_id: uuid.UUID
    item_code: str
    expires_on: dt.date
    days_left: int
    quantity: Decimal


class LowStock(ReadModel):
    """An item whose stock on hand is at or below its reorder level."""

    item_id: uuid.UUID
    item_code: str
    on_hand: Decimal
    reorder_level: Decimal


class DocumentLineRead(ReadModel):
    """A document line."""

    line_no: int
    item_id: uuid.UUID
    quantity: Decimal
    lot_code: str | None
    expires_on: dt.date | None
    unit_value: Decimal | None


class DocumentRead(ReadModel):
    """A receipt or dispatch document."""

    id: uuid.UUID
    kind: str
    reference: str
    state: str
    location_id: uuid.UUID
    donor_ref: str | None
    donation_ref: str | None
    recipient_ref: str | None
    recipient_kind: str | None
    need_id: uuid.UUID | None
    created_by: str
    approved_by: str | None
    second_approved_by: str | None
    notes: str
    lines: tuple[DocumentLineRead, ...]
    group_ids: tuple[uuid.UUID, ...] = ()


class RowError(ReadModel):
    """One problem in one row of an imported file (row 2 is the first data row)."""

    row: int
    field: str
    rule: str
    message: str


class ImportReport(ReadModel):
    """The result of an import: ``ok`` and the rows written, or the errors and nothing written."""

    ok: bool
    rows: int
    written: int
    errors: tuple[RowError, ...] = ()
