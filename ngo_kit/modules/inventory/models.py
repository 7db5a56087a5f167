"""Inventory tables: catalogue, locations, lots, the move ledger, stock levels and traceability.

The ledger is ``inventory_move`` (append-only, hash-chained per organisation). Three kinds of
row are kept in the same transaction as each move so reads never replay history:

* ``inventory_stock``: quantity per (item, location, lot), changed by guarded UPDATEs;
* ``inventory_layer``: the same quantity split by *source* (the receipt or found-stock move the
  goods came from), so FIFO and lot-following allocation is exact;
* ``inventory_allocation``: for every move, which sources its quantity came from. The trace of
  a donation is an indexed lookup of its sources' allocations.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.chain_keys import key_id_column
from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin

#: Location kinds. ``internal`` and ``transit`` hold stock; the others are virtual ends of moves.
HOLDING_KINDS = ("internal", "transit")
VIRTUAL_KINDS = ("donor", "beneficiary", "scrap", "adjustment", "transit")


class Category(IdMixin, OrgMixin, Base):
    """A category of items (food, hygiene, toys...)."""

    __tablename__ = "inventory_category"
    __table_args__ = (sa.UniqueConstraint("org_id", "code"),)

    code: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))
    name_zh: Mapped[str] = mapped_column(sa.String(200), default="")


class Item(IdMixin, OrgMixin, TimestampMixin, Base):
    """A kind of goods in the catalogue, counted in its base unit of measure."""

    __tablename__ = "inventory_item"
    __table_args__ = (sa.UniqueConstraint("org_id", "code"),)

    code: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))
    name_zh: Mapped[str] = mapped_column(sa.String(200), default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("inventory_category.id", ondelete="RESTRICT"), default=None
    )
    unit: Mapped[str] = mapped_column(sa.String(31), default="piece")
    tracked_by_lot: Mapped[bool] = mapped_column(default=False)
    perishable: Mapped[bool] = mapped_column(default=False)
    shelf_life_days: Mapped[int | None] = mapped_column(default=None)
    reorder_level: Mapped[Decimal | None] = mapped_column(default=None)
    allow_negative: Mapped[bool] = mapped_column(default=False)


class PackUnit(IdMixin, OrgMixin, Base):
    """A pack of an item (a box of 12): ``factor`` base units per pack."""

    __tablename__ = "inventory_pack_unit"
    __table_args__ = (sa.UniqueConstraint("org_id", "item_id", "name"),)

    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_item.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(31))
    factor: Mapped[Decimal] = mapped_column()


class Location(IdMixin, OrgMixin, Base):
    """A place stock is (warehouse, room, shelf) or a virtual end of moves (donors, scrap...)."""

    __tablename__ = "inventory_location"
    __table_args__ = (sa.UniqueConstraint("org_id", "code"),)

    code: Mapped[str] = mapped_column(sa.String(63))
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(15), default="internal")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("inventory_location.id", ondelete="RESTRICT"), default=None
    )


class Lot(IdMixin, OrgMixin, TimestampMixin, Base):
    """Goods of one item sharing an expiry date and origin."""

    __tablename__ = "inventory_lot"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "item_id", "code"),
        sa.Index("ix_inventory_lot_org_expires", "org_id", "expires_on"),
    )

    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_item.id", ondelete="RESTRICT")
    )
    code: Mapped[str] = mapped_column(sa.String(63))
    expires_on: Mapped[dt.date | None] = mapped_column(sa.Date, default=None)
    #: The last day the expiring-soon event fired for this lot (so a daily cron warns once).
    warned_on: Mapped[dt.date | None] = mapped_column(sa.Date, default=None)


class Move(IdMixin, OrgMixin, Base):
    """One append-only stock move of ``quantity`` base units from one location to another."""

    __tablename__ = "inventory_move"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "seq"),
        sa.UniqueConstraint("org_id", "key_scope"),
        sa.UniqueConstraint("org_id", "reverses_id"),
        sa.Index("ix_inventory_move_org_donation", "org_id", "donation_ref"),
        sa.Index("ix_inventory_move_org_item_at", "org_id", "item_id", "at"),
        sa.Index("ix_inventory_move_group", "group_id"),
    )

    seq: Mapped[int] = mapped_column(sa.BigInteger)
    at: Mapped[dt.datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(15))
    group_id: Mapped[uuid.UUID] = mapped_column()
    key: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    #: the key scoped to the actor and the operation, and the call's fingerprint
    #: (``ngo_kit.idempotency``), on the operation's first move; not chained
    key_scope: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_item.id", ondelete="RESTRICT")
    )
    lot_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("inventory_lot.id", ondelete="RESTRICT"), default=None
    )
    from_location_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_location.id", ondelete="RESTRICT")
    )
    to_location_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_location.id", ondelete="RESTRICT")
    )
    quantity: Mapped[Decimal] = mapped_column()
    unit_value: Mapped[Decimal | None] = mapped_column(default=None)
    donor_ref: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    donation_ref: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    recipient_ref: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    recipient_kind: Mapped[str | None] = mapped_column(sa.String(15), default=None)
    approved_by: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    second_approved_by: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    need_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    document_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    notes: Mapped[str] = mapped_column(sa.String(2000), default="")
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor: Mapped[str] = mapped_column(sa.String(40))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = key_id_column()


MOVE_FIELDS = (
    "id",
    "org_id",
    "seq",
    "at",
    "kind",
    "group_id",
    "key",
    "item_id",
    "lot_id",
    "from_location_id",
    "to_location_id",
    "quantity",
    "unit_value",
    "donor_ref",
    "donation_ref",
    "recipient_ref",
    "recipient_kind",
    "approved_by",
    "second_approved_by",
    "need_id",
    "document_id",
    "reason",
    "notes",
    "attachments",
    "reverses_id",
    "actor",
)


class Stock(IdMixin, OrgMixin, Base):
    """The quantity of an item (and lot) at a holding location: the sum of its moves.

    ``lot_key`` is the lot's id as text, or ``""`` for untracked stock, so the unique key has no
    NULL in it (NULLs never collide in a unique constraint).
    """

    __tablename__ = "inventory_stock"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "item_id", "location_id", "lot_key"),
        sa.Index("ix_inventory_stock_org_location", "org_id", "location_id"),
    )

    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_item.id", ondelete="RESTRICT")
    )
    location_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_location.id", ondelete="RESTRICT")
    )
    lot_key: Mapped[str] = mapped_column(sa.String(36), default="")
    lot_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("inventory_lot.id", ondelete="RESTRICT"), default=None
    )
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(0))


class Layer(IdMixin, OrgMixin, Base):
    """The part of a stock row that came from one source move (a receipt or found stock)."""

    __tablename__ = "inventory_layer"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "item_id", "location_id", "lot_key", "source_id"),
        sa.Index("ix_inventory_layer_source", "org_id", "source_id"),
    )

    item_id: Mapped[uuid.UUID] = mapped_column()
    location_id: Mapped[uuid.UUID] = mapped_column()
    lot_key: Mapped[str] = mapped_column(sa.String(36), default="")
    source_id: Mapped[uuid.UUID] = mapped_column()
    source_seq: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[Decimal] = mapped_column(default=Decimal(0))


class Allocation(IdMixin, OrgMixin, Base):
    """``quantity`` of move ``move_id`` came from source move ``source_id`` (None: unsourced)."""

    __tablename__ = "inventory_allocation"
    __table_args__ = (
        sa.Index("ix_inventory_allocation_source", "org_id", "source_id"),
        sa.Index("ix_inventory_allocation_move", "move_id"),
    )

    move_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_move.id", ondelete="RESTRICT")
    )
    source_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    quantity: Mapped[Decimal] = mapped_column()


class Need(IdMixin, OrgMixin, TimestampMixin, Base):
    """A request for an item by a beneficiary, site or project; issues fulfil it."""

    __tablename__ = "inventory_need"
    __table_args__ = (sa.Index("ix_inventory_need_org_state", "org_id", "state", "item_id"),)

    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_item.id", ondelete="RESTRICT")
    )
    quantity: Mapped[Decimal] = mapped_column()
    fulfilled: Mapped[Decimal] = mapped_column(default=Decimal(0))
    requester_ref: Mapped[str] = mapped_column(sa.String(200))
    requester_kind: Mapped[str] = mapped_column(sa.String(15))
    priority: Mapped[int] = mapped_column(default=3)
    state: Mapped[str] = mapped_column(sa.String(15), default="open")
    note: Mapped[str] = mapped_column(sa.String(2000), default="")


class Document(IdMixin, OrgMixin, TimestampMixin, Base):
    """A multi-line receipt or dispatch: draft -> confirmed -> done, or cancelled."""

    __tablename__ = "inventory_document"
    __table_args__ = (sa.UniqueConstraint("org_id", "reference"),)

    kind: Mapped[str] = mapped_column(sa.String(15))
    reference: Mapped[str] = mapped_column(sa.String(100))
    state: Mapped[str] = mapped_column(sa.String(15), default="draft")
    location_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_location.id", ondelete="RESTRICT")
    )
    donor_ref: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    donation_ref: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    recipient_ref: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    recipient_kind: Mapped[str | None] = mapped_column(sa.String(15), default=None)
    need_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(sa.String(40))
    approved_by: Mapped[str | None] = mapped_column(sa.String(40), default=None)
    second_approved_by: Mapped[str | None] = mapped_column(sa.String(40), default=None)
    notes: Mapped[str] = mapped_column(sa.String(2000), default="")


class DocumentLine(IdMixin, OrgMixin, Base):
    """One line of a document: an item, a quantity in base units, and its lot when known."""

    __tablename__ = "inventory_document_line"

    document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_document.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column()
    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inventory_item.id", ondelete="RESTRICT")
    )
    quantity: Mapped[Decimal] = mapped_column()
    lot_code: Mapped[str | None] = mapped_column(sa.String(63), default=None)
    expires_on: Mapped[dt.date | None] = mapped_column(sa.Date, default=None)
    unit_value: Mapped[Decimal | None] = mapped_column(default=None)
