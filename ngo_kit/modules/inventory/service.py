"""``tx.inventory``: the inventory module's rules.

Every change of stock is a move between two locations, written to the hash-chained ledger
together with the stock level rows, the per-source layers and the allocation rows that make
the donor trace exact. Quantities are ``Decimal`` in the item's base unit.
"""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import aliased

from ngo_kit import idempotency
from ngo_kit.audit import actor_label, append_chained_many
from ngo_kit.db import (
    QUANTITY_LIMIT,
    QUANTITY_PRECISION,
    QUANTITY_SCALE,
    QUANTITY_UNIT,
    new_id,
    utcnow,
)
from ngo_kit.errors import AlreadyExists, InsufficientStock, NotFound, ValidationFailed
from ngo_kit.i18n import gettext
from ngo_kit.modules.inventory.files import (
    check_format,
    parse_bool,
    parse_packs,
    read_rows,
    write_rows,
)
from ngo_kit.modules.inventory.models import (
    HOLDING_KINDS,
    MOVE_FIELDS,
    Allocation,
    Category,
    Document,
    DocumentLine,
    Item,
    Layer,
    Location,
    Lot,
    Move,
    Need,
    PackUnit,
    Stock,
)
from ngo_kit.modules.inventory.schemas import (
    AdjustIn,
    CategoryIn,
    CategoryRead,
    DocumentIn,
    DocumentLineRead,
    DocumentRead,
    DonationRead,
    ExpiringLot,
    HistoryFilter,
    ImportReport,
    IssueIn,
    IssueSource,
    ItemIn,
    ItemRead,
    LocationIn,
    LocationRead,
    LotRead,
    LowStock,
    MoveRead,
    NeedGap,
    NeedIn,
    NeedRead,
    Operation,
    ReceiveIn,
    RowError,
    ScrapIn,
    Source,
    StockLine,
    TraceLine,
    TraceReport,
    TransferIn,
)
from ngo_kit.schemas import Day, Integer, Text, check, coerce
from ngo_kit.statements import Row, Statements, bind

if TYPE_CHECKING:
    from ngo_kit.context import Context

CHAIN = "inventory_move"
#: A move's ``key``, ``key_scope`` and ``key_fingerprint`` (``idempotency.keyed``).
Keyed = dict[str, Any]
_UNKEYED: Keyed = {"key": None, "key_scope": None, "key_fingerprint": None}
ZERO = Decimal(0)
#: Layers are read oldest first in pages of this many rows.
LAYER_PAGE = 8
Q0 = Decimal("0.0000")
#: The virtual locations seeded in every organisation: code -> (kind, English name).
VIRTUAL_LOCATIONS: dict[str, tuple[str, str]] = {
    "donors": ("donor", "Donors and suppliers"),
    "beneficiaries": ("beneficiary", "Beneficiaries (distributed)"),
    "scrap": ("scrap", "Loss and scrap"),
    "adjustment": ("adjustment", "Inventory adjustment"),
    "transit": ("transit", "In transit"),
}
#: Rows read with Core (attribute access like the ORM objects, without the ORM's cost).
ItemRow = Any
LocationRow = Any
LotRow = Any
#: A look-up of an item or location: by id (``("id", UUID)``) or by code (``("code", str)``).
#: The two are separate namespaces, so no code can stand for another row's id.
RefKey = tuple[str, uuid.UUID | str]
#: Items and locations are never changed or deleted once created (the service has no call
#: for it), so a per-kit cache of their rows cannot go stale. A row enters the cache only after
#: the transaction that read it committed, so a rolled-back creation never does. Keys are
#: ``(kind, org_id, *RefKey)``.
_CATALOGUE: weakref.WeakKeyDictionary[
    Any, dict[tuple[str, uuid.UUID, str, uuid.UUID | str], Any]
] = weakref.WeakKeyDictionary()
_CATALOGUE_LIMIT = 100_000
#: Organisation setting (``org.settings``): dispatches above this many base units need two
#: different approvers, and direct ``issue`` calls above it are refused.
SECOND_APPROVAL_SETTING = "inventory.second_approval_above"
#: Lock order. Every statement that locks stock rows locks them in one order, the order of
#: their unique key (item, location, lot), and before the move chain's head: a unit of work
#: that held the head while waiting for a stock row another held, which in turn waited for
#: the head, would deadlock. On MySQL/MariaDB the statements name the unique key
#: (``FORCE INDEX``): on small tables the optimizer otherwise reaches the row through a
#: one-column foreign-key index, locking that index's entries (other locations' rows too) in
#: another order than a neighbour going through the unique key, which InnoDB reports as a
#: deadlock.
_STOCK_TABLE: sa.Table = Stock.__table__  # type: ignore[assignment]
_STOCK_KEY = next(
    str(c.name) for c in _STOCK_TABLE.constraints if isinstance(c, sa.UniqueConstraint)
)
_BY_STOCK_KEY = f"FORCE INDEX ({_STOCK_KEY})"
#: Organisation setting: when true, anyone (no account needed) may read the donor-facing trace
#: reports and the list of donations, for a public transparency page.
PUBLIC_TRACE_SETTING = "inventory.public_trace"


@dataclass
class _Portion:
    """Part of one operation: a quantity of one lot, and the sources it came from."""

    lot_key: str
    lot_id: uuid.UUID | None
    quantity: Decimal
    sources: list[tuple[uuid.UUID | None, int, Decimal]] = field(default_factory=list)


def _quantity(value: Any) -> Decimal:
    """A read quantity (or a sum, or nothing) to 4 places; -0.0000 becomes 0.0000."""
    return Decimal(value or 0).quantize(Q0) + Q0


def _within_precision(quantity: Decimal, field_name: str) -> Decimal:
    """``quantity`` when a quantity column holds it exactly (see ``ngo_kit.db.exact_quantity``);
    ``ValidationFailed`` naming ``field_name`` otherwise, as for the same value given directly."""
    if quantity != quantity.quantize(QUANTITY_UNIT):
        raise ValidationFailed(field_name, "decimal_max_places", decimal_places=QUANTITY_SCALE)
    if abs(quantity) >= QUANTITY_LIMIT:
        whole_digits = QUANTITY_PRECISION - QUANTITY_SCALE
        raise ValidationFailed(field_name, "decimal_whole_digits", whole_digits=whole_digits)
    return quantity


def _lot_key(lot_id: uuid.UUID | None) -> str:
    return "" if lot_id is None else str(lot_id)


def _lot_id(lot_key: str) -> uuid.UUID | None:
    return uuid.UUID(lot_key) if lot_key else None


def _as_uuid(ref: object) -> uuid.UUID | None:
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(str(ref))
    except ValueError:
        return None


#: How far ahead ``expiring`` looks, in days: at most a century.
_WITHIN_DAYS = Annotated[Integer, Field(ge=0, le=36500)]


def _ref_key(ref: str | uuid.UUID) -> RefKey:
    """How ``ref`` is looked up: a ref that reads as a UUID is an id, anything else a code."""
    ident = _as_uuid(ref)
    return ("id", ident) if ident is not None else ("code", str(ref))


def _row_keys(row: Any) -> list[RefKey]:
    """The look-ups that find ``row``: its id, and its code unless the code reads as a UUID
    (refused since, but an older database may hold one: it is found by its id only)."""
    keys: list[RefKey] = [("id", row.id)]
    if _as_uuid(row.code) is None:
        keys.append(("code", row.code))
    return keys


class InventoryService:
    """Catalogue, locations, moves, stock levels, traceability, needs, documents and reports."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx
        self.db: sa.Connection = tx.connection
        self.sql = _statements(self.db)
        self.fast = _FAST
        self._catalogue = _CATALOGUE.setdefault(tx.kit, {})
        self._items: dict[RefKey, ItemRow] = {}
        self._locations: dict[RefKey, LocationRow] = {}
        #: The stock rows this unit of work has locked: (item, location) -> their lot keys.
        self._locked: dict[tuple[uuid.UUID, uuid.UUID], set[str]] = {}

    # ------------------------------------------------------------------------------------
    # lookups

    def _remember(self, kind: str, row: Any) -> None:
        """Put a catalogue row in the per-kit cache once this transaction has committed."""
        cache = self._catalogue
        org = self.tx.org_id

        def keep() -> None:
            if len(cache) > _CATALOGUE_LIMIT:
                cache.clear()
            for key in _row_keys(row):
                cache[(kind, org, *key)] = row

        self.tx.on_commit(keep)

    def _item(self, ref: str | uuid.UUID) -> ItemRow:
        key = _ref_key(ref)
        cached = self._items.get(key)
        if cached is not None:
            return cached
        tx = self.tx
        cached = self._catalogue.get(("item", tx.org_id, *key))
        if cached is not None:
            self._items[key] = cached
            return cached
        namespace, value = key
        if namespace == "id":
            found = self.fast(tx, "item_by_id").first(tx, org=tx.org_id, id=value)
        else:
            found = self.fast(tx, "item_by_code").first(tx, org=tx.org_id, code=value)
        if found is None:
            raise NotFound("Item", ref)
        row = Row(found)
        for row_key in _row_keys(row):
            self._items[row_key] = row
        self._remember("item", row)
        return row

    def _location_map(self, *refs: str | uuid.UUID) -> dict[str, LocationRow]:
        """The locations ``refs`` (ids or codes) by ``str(ref)``, read in one statement."""
        org = self.tx.org_id
        keys = {str(ref): _ref_key(ref) for ref in refs}
        for key in keys.values():
            cached = self._catalogue.get(("location", org, *key))
            if cached is not None:
                self._locations[key] = cached
        missing = [key for key in keys.values() if key not in self._locations]
        if missing:
            params = {
                "org": org,
                "codes": [value for namespace, value in missing if namespace == "code"],
                "ids": [value for namespace, value in missing if namespace == "id"],
            }
            for hit in self.db.execute(self.sql.locations, params):
                row = Row(hit._mapping)
                for row_key in _row_keys(row):
                    self._locations[row_key] = row
                self._remember("location", row)
        out: dict[str, LocationRow] = {}
        for ref in refs:
            found = self._locations.get(keys[str(ref)])
            if found is None:
                raise NotFound("Location", ref)
            out[str(ref)] = found
        return out

    def _location(self, ref: str | uuid.UUID) -> LocationRow:
        return self._location_map(ref)[str(ref)]

    def _holding(self, ref: str | uuid.UUID, field_name: str) -> LocationRow:
        return _held(self._location(ref), field_name)

    def _holding_and(
        self, ref: str | uuid.UUID, field_name: str, other: str
    ) -> tuple[LocationRow, LocationRow]:
        """The stock-holding location ``ref`` (``field_name`` names it in errors) and the
        location ``other`` (a source or sink such as ``donors``), read together."""
        locs = self._location_map(ref, other)
        return _held(locs[str(ref)], field_name), locs[other]

    def _lot(self, item: ItemRow, code: str | None, field_name: str = "lot") -> LotRow | None:
        if code is None:
            if item.tracked_by_lot:
                raise ValidationFailed(field_name, "lot_required")
            return None
        if not item.tracked_by_lot:
            raise ValidationFailed(field_name, "lot_not_tracked")
        tx = self.tx
        row = self.fast(tx, "lot_by_code").first(tx, org=tx.org_id, item=item.id, code=code)
        if row is None:
            raise NotFound("Lot", code)
        return Row(row)

    def _lot_for_receipt(
        self, item: ItemRow, code: str | None, expires_on: dt.date | None, field_name: str = "lot"
    ) -> LotRow | None:
        if code is None:
            if item.tracked_by_lot:
                raise ValidationFailed(field_name, "lot_required")
            return None
        if not item.tracked_by_lot:
            raise ValidationFailed(field_name, "lot_not_tracked")
        tx = self.tx
        lookup = self.fast(tx, "lot_by_code")
        row = lookup.first(tx, org=tx.org_id, item=item.id, code=code)
        if row is not None:
            return Row(row)
        if expires_on is None and item.perishable and item.shelf_life_days:
            expires_on = utcnow().date() + dt.timedelta(days=item.shelf_life_days)
        from ngo_kit.db import insert_ignore

        self.db.execute(
            insert_ignore(
                self.db,
                Lot,
                id=new_id(),
                org_id=tx.org_id,
                item_id=item.id,
                code=code,
                expires_on=expires_on,
                created_at=utcnow(),
            )
        )
        return Row(lookup.first(tx, org=tx.org_id, item=item.id, code=code) or {})

    def _base_quantity(self, item: ItemRow, quantity: Decimal, unit: str | None) -> Decimal:
        if unit is None or unit == item.unit:
            return quantity
        tx = self.tx
        factor = self.db.scalar(
            sa.select(PackUnit.factor).where(
                PackUnit.org_id == tx.org_id, PackUnit.item_id == item.id, PackUnit.name == unit
            )
        )
        if factor is None:
            raise ValidationFailed("unit", "unknown_unit", unit=unit)
        return _within_precision(quantity * factor, "quantity")

    # ------------------------------------------------------------------------------------
    # catalogue and locations

    def create_category(
        self, data: CategoryIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> CategoryRead:
        """Add a category (``inventory.manage``). ``AlreadyExists`` for a taken code."""
        tx = self.tx
        spec = coerce(CategoryIn, data, kwargs)
        tx.require("inventory.manage")
        values = {"id": new_id(), "org_id": tx.org_id, **spec.model_dump()}
        with tx.translate_integrity(AlreadyExists("Category", spec.code)):
            self.db.execute(sa.insert(Category).values(values))
        tx.audit("inventory.category_created", "inventory_category", values["id"], spec.code)
        return CategoryRead.model_validate(values)

    def create_item(
        self, data: ItemIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ItemRead:
        """Add a catalogue item with its pack units (``inventory.manage``).

        Raises ``AlreadyExists`` for a taken code, ``NotFound`` for an unknown category.
        """
        tx = self.tx
        spec = coerce(ItemIn, data, kwargs)
        tx.require("inventory.manage")
        return self._create_item(spec)

    def _create_item(self, spec: ItemIn) -> ItemRead:
        tx = self.tx
        category_id = None
        if spec.category is not None:
            category_id = self.db.scalar(
                sa.select(Category.id).where(
                    Category.org_id == tx.org_id, Category.code == spec.category
                )
            )
            if category_id is None:
                raise NotFound("Category", spec.category)
        values = spec.model_dump(exclude={"category", "pack_units"})
        values.update(id=new_id(), org_id=tx.org_id, category_id=category_id, created_at=utcnow())
        with tx.translate_integrity(AlreadyExists("Item", spec.code)):
            self.db.execute(sa.insert(Item).values(values))
        if spec.pack_units:
            self.db.execute(
                sa.insert(PackUnit),
                [
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "item_id": values["id"],
                        "name": n,
                        "factor": f,
                    }
                    for n, f in spec.pack_units.items()
                ],
            )
        tx.audit("inventory.item_created", "inventory_item", values["id"], spec.code)
        return ItemRead.model_validate({**values, "pack_units": dict(spec.pack_units)})

    def item(self, ref: str | uuid.UUID) -> ItemRead:
        """One item by code or id (``inventory.view``); ``NotFound`` otherwise."""
        self.tx.require("inventory.view")
        row = self._item(ref)
        return self._item_read(row)

    def _item_read(self, row: ItemRow) -> ItemRead:
        tx = self.tx
        packs = dict(
            self.db.execute(
                sa.select(PackUnit.name, PackUnit.factor).where(
                    PackUnit.org_id == tx.org_id, PackUnit.item_id == row.id
                )
            ).all()
        )
        return ItemRead.model_validate({**row._mapping, "pack_units": packs})

    def items(self) -> list[ItemRead]:
        """Every item of the catalogue by code (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        packs: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)
        for item_id, name, factor in self.db.execute(
            sa.select(PackUnit.item_id, PackUnit.name, PackUnit.factor).where(
                PackUnit.org_id == tx.org_id
            )
        ):
            packs[item_id][name] = factor
        rows = self.db.execute(
            sa.select(*Item.__table__.c).where(Item.org_id == tx.org_id).order_by(Item.code)
        )
        return [ItemRead.model_validate({**r._mapping, "pack_units": packs[r.id]}) for r in rows]

    def create_location(
        self, data: LocationIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> LocationRead:
        """Add a real location, optionally inside ``parent`` (``inventory.manage``)."""
        tx = self.tx
        spec = coerce(LocationIn, data, kwargs)
        tx.require("inventory.manage")
        parent_id = None
        if spec.parent is not None:
            parent = self._location(spec.parent)
            if parent.kind != "internal":
                raise ValidationFailed("parent", "not_a_stock_location")
            parent_id = parent.id
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "code": spec.code,
            "name": spec.name,
            "kind": "internal",
            "parent_id": parent_id,
        }
        with tx.translate_integrity(AlreadyExists("Location", spec.code)):
            self.db.execute(sa.insert(Location).values(values))
        tx.audit("inventory.location_created", "inventory_location", values["id"], spec.code)
        return LocationRead.model_validate(values)

    def locations(self) -> list[LocationRead]:
        """Every location, real and virtual, by code (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        rows = tx.session.scalars(
            sa.select(Location).where(Location.org_id == tx.org_id).order_by(Location.code)
        )
        return [LocationRead.model_validate(r) for r in rows]

    def lot(self, item: str | uuid.UUID, code: str) -> LotRead:
        """One lot of an item (``inventory.view``)."""
        self.tx.require("inventory.view")
        row = self._lot(self._item(item), code)
        assert row is not None
        return LotRead.model_validate(row)

    def seed_locations(self) -> None:
        """Create this organisation's virtual locations (``inventory.manage``).

        Called by ``ngo_kit_org_created`` as the organisation is created (the system actor);
        a second call raises ``Conflict``: they exist already.
        """
        tx = self.tx
        tx.require("inventory.manage")
        self.db.execute(
            sa.insert(Location),
            [
                {
                    "id": new_id(),
                    "org_id": tx.org_id,
                    "code": code,
                    "name": name,
                    "kind": kind,
                    "parent_id": None,
                }
                for code, (kind, name) in VIRTUAL_LOCATIONS.items()
            ],
        )

    # ------------------------------------------------------------------------------------
    # the move engine

    def _keyed(self, operation: str, key: str | None, spec: Any = None, **params: Any) -> Keyed:
        """``key`` scoped to the actor and ``operation``, fingerprinting ``spec`` (its fields
        but the key) and ``params``."""
        if spec is not None:
            params = {**spec.model_dump(exclude={"key"}), **params}
        return idempotency.keyed(self.tx, operation, key, **params)

    def _existing(self, keyed: Keyed) -> Operation | None:
        """The first result of the operation whose key (in ``keyed``'s scope) was used;
        ``KeyReused`` when that one had other parameters."""
        if keyed["key_scope"] is None:
            return None
        tx = self.tx
        found = self.db.execute(
            sa.select(Move.group_id, Move.key_fingerprint).where(
                Move.org_id == tx.org_id, Move.key_scope == keyed["key_scope"]
            )
        ).first()
        if found is None:
            return None
        idempotency.check_same(keyed["key"], found[1], keyed["key_fingerprint"])
        return self._operation(found[0])

    def _operation(self, group_id: uuid.UUID) -> Operation:
        tx = self.tx
        rows = list(
            self.db.execute(
                sa.select(*Move.__table__.c)
                .where(Move.org_id == tx.org_id, Move.group_id == group_id)
                .order_by(Move.seq)
            )
        )
        return Operation(group_id=group_id, moves=tuple(self._move_reads(rows)))

    def _move_reads(self, rows: Sequence[Any]) -> list[MoveRead]:
        if not rows:
            return []
        sources: dict[uuid.UUID, list[Source]] = defaultdict(list)
        for move_id, source_id, qty in self.db.execute(
            sa.select(Allocation.move_id, Allocation.source_id, Allocation.quantity)
            .where(Allocation.move_id.in_([r.id for r in rows]))
            .order_by(Allocation.id)
        ):
            sources[move_id].append(Source(source_id=source_id, quantity=qty))
        return [
            MoveRead.model_validate({**r._mapping, "sources": tuple(sources[r.id])}) for r in rows
        ]

    def _take(
        self,
        item: ItemRow,
        location: LocationRow,
        quantity: Decimal,
        lot: LotRow | None,
        *,
        only_sources: dict[uuid.UUID | None, Decimal] | None = None,
    ) -> list[_Portion]:
        """Take ``quantity`` out of ``location``: guarded stock decrements, then FIFO layers.

        Without a lot, tracked items are picked first-expiring-first-out, from the lots whose
        stock rows this unit of work locked (``_lock_in_order``, here unless the caller did).
        ``only_sources`` (for reversals) takes exactly those sources' quantities instead of FIFO.
        """
        if lot is not None or not item.tracked_by_lot:
            candidates = [(_lot_key(lot.id if lot else None), ZERO)]
        else:
            candidates = self._fefo_candidates(item, location)
            available = sum((q for _, q in candidates), ZERO)
            if available < quantity and not item.allow_negative:
                raise InsufficientStock(requested=quantity, available=available)
        portions: list[_Portion] = []
        remaining = quantity
        for lot_key, seen in candidates:
            if remaining <= 0:
                break
            want = remaining if not seen else min(remaining, seen)
            if item.allow_negative and lot_key == candidates[-1][0]:
                want = remaining
            taken = self._decrement_stock(item, location, lot_key, want, len(candidates) == 1)
            if taken <= 0:
                continue
            portion = _Portion(lot_key, _lot_id(lot_key), taken)
            portion.sources = self._take_layers(item, location, lot_key, taken, only_sources)
            portions.append(portion)
            remaining -= taken
        if remaining > 0:
            available = quantity - remaining
            raise InsufficientStock(requested=quantity, available=available)
        return portions

    def _fefo_candidates(self, item: ItemRow, location: LocationRow) -> list[tuple[str, Decimal]]:
        """The lots of ``item`` with stock at ``location``, first-expiring first.

        First-expiring order is not lock order, so the rows are locked first, in lock order;
        then only the locked ones are candidates. A lot received into ``location`` by another
        unit of work after the lock is left alone: decrementing it would lock a row out of
        order, which can deadlock with a unit of work that holds it.
        """
        tx = self.tx
        locked = self._locked.get((item.id, location.id))
        if locked is None and self.db.dialect.name != "sqlite":  # SQLite serialises writers
            self._lock_in_order([item.id], [location.id])
            locked = self._locked[(item.id, location.id)]
        rows = self.db.execute(
            sa.select(Stock.lot_key, Stock.quantity)
            .join(Lot, Lot.id == Stock.lot_id)
            .where(
                Stock.org_id == tx.org_id,
                Stock.item_id == item.id,
                Stock.location_id == location.id,
                Stock.quantity > 0,
            )
            .order_by(Lot.expires_on.is_(None), Lot.expires_on, Lot.created_at, Lot.code)
        )
        return [(k, q) for k, q in rows if locked is None or k in locked]

    def _decrement_stock(
        self, item: ItemRow, location: LocationRow, lot_key: str, want: Decimal, whole: bool
    ) -> Decimal:
        """Guarded decrement; returns what was taken (``want`` or, under a race, less)."""
        tx = self.tx
        params = {"org": tx.org_id, "item": item.id, "loc": location.id, "lot": lot_key}
        if item.allow_negative:  # no guard: adding ``-want`` creates the row when it has none
            self._add_stock(item.id, location.id, lot_key, -want)
            return want
        for _ in range(100):
            taken = self.fast(tx, "stock_take").changed(tx, **params, q=want, floor=want)
            if taken == 1:
                return want
            found = self.fast(tx, "stock_read").first(tx, **params)
            have = found["quantity"] if found else ZERO
            if whole or have <= 0:
                if whole:
                    raise InsufficientStock(requested=want, available=max(have, ZERO))
                return ZERO
            want = min(want, have)
        return ZERO  # pragma: no cover - a hundred lost races in a row

    def _take_layers(
        self,
        item: ItemRow,
        location: LocationRow,
        lot_key: str,
        quantity: Decimal,
        only_sources: dict[uuid.UUID | None, Decimal] | None,
    ) -> list[tuple[uuid.UUID | None, int, Decimal]]:
        """Consume layers oldest source first (the stock row is locked by our decrement)."""
        tx = self.tx
        params = {"org": tx.org_id, "item": item.id, "loc": location.id, "lot": lot_key}
        fifo = self.fast(tx, "layers_fifo")
        wanted = [s for s in only_sources or () if s is not None]
        out: list[tuple[uuid.UUID | None, int, Decimal]] = []
        remaining = quantity
        while remaining > 0:  # a page of the oldest sources at a time; taken ones drop out
            if only_sources is None:
                page = [tuple(r.values()) for r in fifo.all(tx, **params)]
            else:  # a reversal takes back exactly the sources the original move took
                stmt = self.sql.layers_fifo.where(Layer.source_id.in_(wanted))
                page = [tuple(r) for r in self.db.execute(stmt, params).all()]
            progressed = False
            for layer_id, source_id, source_seq, have in page:
                if remaining <= 0:
                    break
                cap = (
                    have
                    if only_sources is None
                    else min(have, only_sources[source_id] - taken(out, source_id))
                )
                take = min(remaining, cap)
                if take <= 0:
                    continue
                took = self.fast(tx, "layer_take").changed(tx, layer=layer_id, q=take, floor=take)
                if took != 1:
                    raise InsufficientStock(requested=quantity, available=quantity - remaining)
                out.append((source_id, source_seq, take))
                remaining -= take
                progressed = True
            if len(page) < LAYER_PAGE or not progressed:
                break
        if remaining > 0:
            if only_sources is not None and not item.allow_negative:
                raise InsufficientStock(requested=quantity, available=quantity - remaining)
            out.append((None, 0, remaining))  # stock allowed below zero has no source
        return out

    def _ensure_stock_rows(self, keys: Iterable[tuple[uuid.UUID, uuid.UUID, str]]) -> None:
        """Create the stock rows ``(item_id, location_id, lot_key)`` that are missing, and lock
        all of them, in lock order.

        Adding zero locks the row at once, exclusively: an insert that skipped an existing row
        would take a shared lock on MySQL/MariaDB, and two units of work upgrading their shared
        locks to write would deadlock. Sorted in Python: ngo-kit's ids are time-ordered UUIDs,
        which every supported database orders as Python does. SQLite serialises writers
        already, and every write that needs a row creates it (``_add_stock``), so there it does
        nothing.
        """
        if self.db.dialect.name == "sqlite":
            return
        for item_id, location_id, lot_key in sorted(set(keys)):
            self._add_stock(item_id, location_id, lot_key, ZERO)

    def _add_stock(
        self, item_id: uuid.UUID, location_id: uuid.UUID, lot_key: str, q: Decimal
    ) -> None:
        tx = self.tx
        locked = self._locked.get((item_id, location_id))
        if locked is not None:  # a row this unit of work writes is one it holds
            locked.add(lot_key)
        self.fast(tx, "stock_add").changed(
            tx,
            id=new_id(),
            org_id=tx.org_id,
            item_id=item_id,
            location_id=location_id,
            lot_key=lot_key,
            lot_id=_lot_id(lot_key),
            quantity=q,
        )

    def _add_layers(
        self,
        item_id: uuid.UUID,
        location_id: uuid.UUID,
        lot_key: str,
        sources: Iterable[tuple[uuid.UUID | None, int, Decimal]],
    ) -> None:
        tx = self.tx
        for source_id, source_seq, q in sources:
            if source_id is None:
                continue
            self.fast(tx, "layer_add").changed(
                tx,
                id=new_id(),
                org_id=tx.org_id,
                item_id=item_id,
                location_id=location_id,
                lot_key=lot_key,
                source_id=source_id,
                source_seq=source_seq,
                quantity=q,
            )

    def _write(
        self,
        kind: str,
        item: ItemRow,
        origin: LocationRow,
        destination: LocationRow,
        portions: list[_Portion],
        fields: dict[str, Any],
        keyed: Keyed,
        *,
        self_sourced: bool = False,
    ) -> Operation:
        """Append the moves, allocations and destination stock; audit; fire the hooks."""
        tx = self.tx
        group_id = new_id()
        now = utcnow()
        actor = actor_label(tx.actor)
        if destination.kind in HOLDING_KINDS:
            for p in portions:  # lock destination rows before the chain head
                self._add_stock(item.id, destination.id, p.lot_key, p.quantity)
        rows: list[dict[str, Any]] = []
        for i, p in enumerate(portions):
            rows.append(
                {
                    "id": new_id(),
                    "at": now,
                    "kind": kind,
                    "group_id": group_id,
                    **(keyed if i == 0 else _UNKEYED),
                    "item_id": item.id,
                    "lot_id": p.lot_id,
                    "from_location_id": origin.id,
                    "to_location_id": destination.id,
                    "quantity": p.quantity,
                    "unit_value": None,
                    "donor_ref": None,
                    "donation_ref": None,
                    "recipient_ref": None,
                    "recipient_kind": None,
                    "approved_by": None,
                    "second_approved_by": None,
                    "need_id": None,
                    "document_id": None,
                    "reason": "",
                    "notes": "",
                    "attachments": [],
                    "reverses_id": None,
                    "actor": actor,
                    **fields,
                }
            )
        written = append_chained_many(tx, CHAIN, Move.__table__, rows, MOVE_FIELDS)  # type: ignore[arg-type]
        allocations: list[dict[str, Any]] = []
        for p, row in zip(portions, written, strict=True):
            if self_sourced:
                p.sources = [(row["id"], row["seq"], p.quantity)]
            for source_id, _seq, q in p.sources:
                allocations.append(
                    {
                        "id": new_id(),
                        "org_id": tx.org_id,
                        "move_id": row["id"],
                        "source_id": source_id,
                        "quantity": q,
                    }
                )
            if destination.kind in HOLDING_KINDS:
                self._add_layers(item.id, destination.id, p.lot_key, p.sources)
        insert = self.fast(tx, "allocation")
        for allocation in allocations:
            insert.changed(tx, **allocation)
        total = sum((p.quantity for p in portions), ZERO)
        tx.audit(
            f"inventory.{kind}",
            "inventory_move",
            group_id,
            f"{kind} {total} {item.unit} of {item.code}",
            {"item": item.code, "quantity": total, "from": origin.code, "to": destination.code},
        )
        moves = tuple(
            MoveRead.model_validate(
                {
                    **row,
                    "sources": [{"source_id": s, "quantity": q} for s, _seq, q in p.sources],
                }
            )
            for p, row in zip(portions, written, strict=True)
        )
        for move in moves:
            tx.emit("ngo_kit_stock_moved", move=move)
        leaves_stock = origin.kind in HOLDING_KINDS and destination.kind not in HOLDING_KINDS
        if leaves_stock and item.reorder_level is not None:
            self._check_low(item, total)
        return Operation(group_id=group_id, moves=moves)

    def _check_low(self, item: ItemRow, taken: Decimal) -> None:
        assert item.reorder_level is not None
        after = self._on_hand(item.id)
        if after <= item.reorder_level < after + taken:
            self.tx.emit("ngo_kit_stock_low", item=self._item_read(item), on_hand=after)

    def _on_hand(self, item_id: uuid.UUID) -> Decimal:
        tx = self.tx
        total = self.db.scalar(
            sa.select(sa.func.sum(Stock.quantity))
            .join(Location, Location.id == Stock.location_id)
            .where(
                Stock.org_id == tx.org_id,
                Stock.item_id == item_id,
                Location.kind == "internal",
            )
        )
        return _quantity(total)

    # ------------------------------------------------------------------------------------
    # operations

    def receive(
        self, data: ReceiveIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> Operation:
        """Goods in (入库) from a donor or supplier into a location (``inventory.receive``).

        Records donor, donation reference, lot and expiry, unit value, notes and attachment
        references. A repeated ``key`` returns the first result and writes nothing. Raises
        ``NotFound`` (item, location), ``ValidationFailed`` (lot rules, unknown pack unit).
        """
        tx = self.tx
        spec = coerce(ReceiveIn, data, kwargs)
        tx.require("inventory.receive")
        return self._receive(spec, None)

    def _receive(self, spec: ReceiveIn, document_id: uuid.UUID | None) -> Operation:
        keyed = self._keyed("inventory.receive", spec.key, spec, document_id=document_id)
        done = self._existing(keyed)
        if done is not None:
            return done
        item = self._item(spec.item)
        to, donors = self._holding_and(spec.to, "to", "donors")
        quantity = self._base_quantity(item, spec.quantity, spec.unit)
        unit_value = spec.unit_value
        if unit_value is not None and quantity != spec.quantity:
            unit_value = (unit_value * spec.quantity / quantity).quantize(Decimal("0.0001"))
        lot = self._lot_for_receipt(item, spec.lot, spec.expires_on)
        portion = _Portion(_lot_key(lot.id if lot else None), lot.id if lot else None, quantity)
        fields = {
            "donor_ref": spec.donor,
            "donation_ref": spec.donation,
            "unit_value": unit_value,
            "notes": spec.notes,
            "attachments": list(spec.attachments),
            "document_id": document_id,
        }
        return self._idempotent(
            keyed,
            lambda: self._write(
                "receive", item, donors, to, [portion], fields, keyed, self_sourced=True
            ),
        )

    def _idempotent(self, keyed: Keyed, write: Any) -> Operation:
        """Run ``write``; with a key, a concurrent twin's win returns the twin's result."""
        if keyed["key_scope"] is None:
            result: Operation = write()
            return result
        tx = self.tx
        try:
            with tx.savepoint():
                result = write()
            return result
        except sa.exc.IntegrityError:
            self._locked.clear()  # rolling back the savepoint may have released some
            existing = self._existing(keyed)
            if existing is None:
                raise
            return existing

    def issue(self, data: IssueIn | dict[str, Any] | None = None, /, **kwargs: Any) -> Operation:
        """Goods out (出库) to a beneficiary, household, project, activity or site.

        Picks lots first-expiring-first-out unless ``lot`` is named, and allocates the quantity
        to the receipts it came from (FIFO). ``need`` links the issue to a need. Needs
        ``inventory.issue``. Raises ``InsufficientStock`` (nothing written), ``NotFound``,
        ``ValidationFailed`` (``needs_second_approval`` above the organisation's threshold:
        use a dispatch document with two approvers).
        """
        tx = self.tx
        spec = coerce(IssueIn, data, kwargs)
        tx.require("inventory.issue")
        threshold = self._second_approval_threshold()
        second = spec.second_approved_by
        if (
            threshold is not None
            and self._base_quantity(self._item(spec.item), spec.quantity, spec.unit) > threshold
            and (second is None or second == spec.approved_by)
        ):
            raise ValidationFailed(
                "second_approved_by", "needs_second_approval", threshold=threshold
            )
        return self._issue(spec, None)

    def _issue(self, spec: IssueIn, document_id: uuid.UUID | None) -> Operation:
        tx = self.tx
        keyed = self._keyed("inventory.issue", spec.key, spec, document_id=document_id)
        done = self._existing(keyed)
        if done is not None:
            return done
        item = self._item(spec.item)
        origin, beneficiaries = self._holding_and(spec.from_, "from_", "beneficiaries")
        quantity = self._base_quantity(item, spec.quantity, spec.unit)
        lot = self._lot(item, spec.lot) if spec.lot is not None else None
        need = self._open_need(spec.need, item) if spec.need is not None else None

        def write() -> Operation:
            portions = self._take(item, origin, quantity, lot)
            fields = {
                "recipient_ref": spec.recipient,
                "recipient_kind": spec.recipient_kind,
                "approved_by": spec.approved_by or actor_label(tx.actor),
                "second_approved_by": spec.second_approved_by,
                "need_id": spec.need,
                "document_id": document_id,
                "notes": spec.notes,
            }
            op = self._write("issue", item, origin, beneficiaries, portions, fields, keyed)
            if need is not None:
                self._fulfil(need, quantity)
            return op

        return self._idempotent(keyed, write)

    def transfer(
        self, data: TransferIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> Operation:
        """Move stock between the organisation's own locations (调拨), ``inventory.issue``.

        The sources (donations) travel with the goods, so the trace stays exact.
        """
        tx = self.tx
        spec = coerce(TransferIn, data, kwargs)
        tx.require("inventory.issue")
        keyed = self._keyed("inventory.transfer", spec.key, spec)
        done = self._existing(keyed)
        if done is not None:
            return done
        item = self._item(spec.item)
        origin = self._holding(spec.from_, "from_")
        to = self._holding(spec.to, "to")
        if origin.id == to.id:
            raise ValidationFailed("to", "same_location")
        quantity = self._base_quantity(item, spec.quantity, spec.unit)
        lot = self._lot(item, spec.lot) if spec.lot is not None else None

        def write() -> Operation:
            self._lock_in_order([item.id], [origin.id, to.id])
            portions = self._take(item, origin, quantity, lot)
            return self._write("transfer", item, origin, to, portions, {"notes": spec.notes}, keyed)

        return self._idempotent(keyed, write)

    def _lock_in_order(
        self, item_ids: Iterable[uuid.UUID], location_ids: Iterable[uuid.UUID]
    ) -> None:
        """Lock the existing stock rows of items at locations, in lock order (item, location, lot),
        in one statement, and remember them: what this unit of work may take from.

        For units of work that take more than one row: two transfers in opposite directions,
        a first-expiring-first-out issue taking several lots, a dispatch of several items
        would otherwise each lock a row the other waits for (a deadlock the database breaks by
        failing one). SQLite serialises writers already.
        """
        if self.db.dialect.name == "sqlite":
            return
        item_ids, location_ids = sorted(set(item_ids)), sorted(set(location_ids))
        stock = _STOCK_TABLE
        rows = self.db.execute(
            sa.select(stock.c.item_id, stock.c.location_id, stock.c.lot_key)
            .with_hint(stock, _BY_STOCK_KEY, dialect_name="mysql")
            .where(
                stock.c.org_id == self.tx.org_id,
                stock.c.item_id.in_(item_ids),
                stock.c.location_id.in_(location_ids),
            )
            .order_by(stock.c.item_id, stock.c.location_id, stock.c.lot_key)
            .with_for_update()
        ).all()
        for item_id in item_ids:
            for location_id in location_ids:
                self._locked.setdefault((item_id, location_id), set())
        for item_id, location_id, lot_key in rows:
            self._locked[(item_id, location_id)].add(lot_key)

    def _lock_receipt_rows(self, specs: Iterable[ReceiveIn]) -> None:
        """Create and lock, in lock order, the stock rows several receipts will add to.

        A unit of work that posts several receipts holds the move chain's head after the
        first: it must not wait for a stock row after that.
        """
        keys: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        for spec in specs:
            item = self._item(spec.item)
            to = self._location(spec.to)
            if to.kind in HOLDING_KINDS:
                lot = self._lot_for_receipt(item, spec.lot, spec.expires_on)
                keys.append((item.id, to.id, _lot_key(lot.id if lot else None)))
        self._ensure_stock_rows(keys)

    def scrap(self, data: ScrapIn | dict[str, Any] | None = None, /, **kwargs: Any) -> Operation:
        """Write off goods that expired, broke or were lost (报损), ``inventory.adjust``."""
        tx = self.tx
        spec = coerce(ScrapIn, data, kwargs)
        tx.require("inventory.adjust")
        keyed = self._keyed("inventory.scrap", spec.key, spec)
        done = self._existing(keyed)
        if done is not None:
            return done
        item = self._item(spec.item)
        origin, scrapped = self._holding_and(spec.from_, "from_", "scrap")
        quantity = self._base_quantity(item, spec.quantity, spec.unit)
        lot = self._lot(item, spec.lot) if spec.lot is not None else None

        def write() -> Operation:
            portions = self._take(item, origin, quantity, lot)
            fields = {"reason": spec.reason, "notes": spec.notes}
            return self._write("scrap", item, origin, scrapped, portions, fields, keyed)

        return self._idempotent(keyed, write)

    def adjust(self, data: AdjustIn | dict[str, Any] | None = None, /, **kwargs: Any) -> Operation:
        """A stocktake (盘点): set the books to ``counted``, posting the difference (``inventory.adjust``).

        Counted more than the books: the surplus is found stock, a source of its own. Counted
        less: the shortfall leaves oldest sources first. No difference: no move, an empty
        ``Operation``.
        """
        tx = self.tx
        spec = coerce(AdjustIn, data, kwargs)
        tx.require("inventory.adjust")
        keyed = self._keyed("inventory.adjust", spec.key, spec)
        done = self._existing(keyed)
        if done is not None:
            return done
        item = self._item(spec.item)
        loc, adjustment = self._holding_and(spec.location, "location", "adjustment")
        lot = self._lot_for_receipt(item, spec.lot, spec.expires_on)
        lot_key = _lot_key(lot.id if lot else None)
        self._ensure_stock_rows([(item.id, loc.id, lot_key)])  # locked: the count must meet
        found = self.fast(tx, "stock_read").first(  # the books it corrects
            tx, org=tx.org_id, item=item.id, loc=loc.id, lot=lot_key
        )
        difference = spec.counted - (found["quantity"] if found else ZERO)
        if difference == 0:
            return Operation(group_id=new_id(), moves=())
        fields = {"reason": spec.reason}

        def write() -> Operation:
            if difference > 0:
                portion = _Portion(lot_key, _lot_id(lot_key), difference)
                return self._write(
                    "adjust",
                    item,
                    adjustment,
                    loc,
                    [portion],
                    fields,
                    keyed,
                    self_sourced=True,
                )
            portions = self._take(item, loc, -difference, lot)
            return self._write("adjust", item, loc, adjustment, portions, fields, keyed)

        return self._idempotent(keyed, write)

    def reverse(
        self, move_id: uuid.UUID | str, *, reason: str, key: str | None = None
    ) -> Operation:
        """Correct a mistake with a reversing move that points at the original (``inventory.adjust``).

        The reversal carries the original's sources back, so traces net out. Raises
        ``NotFound``, ``ValidationFailed`` (``already_reversed``, ``not_reversible``) and
        ``InsufficientStock`` when the goods have moved on (reverse the later moves first).
        """
        tx = self.tx
        tx.require("inventory.adjust")
        reason = check("reason", Text, reason)
        key = check("key", Text | None, key)
        if not reason or not reason.strip():
            raise ValidationFailed("reason", "blank")
        keyed = self._keyed("inventory.reverse", key, move_id=str(move_id), reason=reason)
        done = self._existing(keyed)
        if done is not None:
            return done
        original: Move = tx.get_owned(Move, move_id, "Move")
        if original.kind == "reverse":
            raise ValidationFailed("move_id", "not_reversible")
        taken = self.db.scalar(
            sa.select(Move.id).where(Move.org_id == tx.org_id, Move.reverses_id == original.id)
        )
        if taken is not None:
            raise ValidationFailed("move_id", "already_reversed")
        item = self._item(original.item_id)
        locs = self._location_map(original.from_location_id, original.to_location_id)
        origin = locs[str(original.to_location_id)]
        destination = locs[str(original.from_location_id)]
        lot_key = _lot_key(original.lot_id)
        allocated: dict[uuid.UUID | None, Decimal] = defaultdict(lambda: ZERO)
        for source_id, qty in self.db.execute(
            sa.select(Allocation.source_id, Allocation.quantity).where(
                Allocation.move_id == original.id
            )
        ):
            allocated[source_id] += qty
        seqs = dict(
            self.db.execute(
                sa.select(Move.id, Move.seq).where(
                    Move.org_id == tx.org_id,
                    Move.id.in_([s for s in allocated if s is not None]),
                )
            ).all()
        )

        def write() -> Operation:
            portion = _Portion(lot_key, original.lot_id, original.quantity)
            if origin.kind in HOLDING_KINDS:
                got = self._decrement_stock(item, origin, lot_key, original.quantity, True)
                assert got == original.quantity
                portion.sources = self._take_layers(
                    item, origin, lot_key, original.quantity, dict(allocated)
                )
            else:
                portion.sources = [(s, seqs.get(s, 0) if s else 0, q) for s, q in allocated.items()]
            fields = {
                "reverses_id": original.id,
                "reason": reason.strip()[:500],
                "donor_ref": original.donor_ref,
                "donation_ref": original.donation_ref,
                "recipient_ref": original.recipient_ref,
                "recipient_kind": original.recipient_kind,
                "need_id": original.need_id,
            }
            op = self._write("reverse", item, origin, destination, [portion], fields, keyed)
            if original.need_id is not None and original.kind == "issue":
                self._unfulfil(original.need_id, original.quantity)
            return op

        try:
            return self._idempotent(keyed, write)
        except sa.exc.IntegrityError:  # a concurrent reversal of the same move won
            raise ValidationFailed("move_id", "already_reversed") from None

    # ------------------------------------------------------------------------------------
    # stock levels and reports

    def stock_level(
        self, item: str | uuid.UUID, location: str | uuid.UUID, lot: str | None = None
    ) -> Decimal:
        """Stock of an item (and lot) at one location: one indexed row read (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        it = self._item(item)
        loc = self._location(location)
        lot_row = self._lot(it, lot) if lot is not None else None
        found = self.fast(tx, "stock_read").first(
            tx, org=tx.org_id, item=it.id, loc=loc.id, lot=_lot_key(lot_row.id if lot_row else None)
        )
        return _quantity(found["quantity"] if found is not None else None)

    def on_hand(self, item: str | uuid.UUID) -> Decimal:
        """An item's stock at all real locations, every lot (``inventory.view``)."""
        self.tx.require("inventory.view")
        return self._on_hand(self._item(item).id)

    def stock_on_hand(
        self, *, location: str | None = None, category: str | None = None
    ) -> list[StockLine]:
        """Stock by item, location and lot, with value where unit values exist (``inventory.view``).

        ``location`` includes the locations inside it (a warehouse and its rooms and shelves).
        """
        tx = self.tx
        tx.require("inventory.view")
        stmt = (
            sa.select(
                Stock.item_id,
                Item.code,
                Category.code,
                Stock.location_id,
                Location.code,
                Stock.lot_id,
                Lot.code,
                Lot.expires_on,
                Stock.quantity,
            )
            .join(Item, Item.id == Stock.item_id)
            .join(Location, Location.id == Stock.location_id)
            .outerjoin(Category, Category.id == Item.category_id)
            .outerjoin(Lot, Lot.id == Stock.lot_id)
            .where(Stock.org_id == tx.org_id, Stock.quantity != 0)
            .order_by(Location.code, Item.code, Lot.expires_on, Lot.code)
        )
        if location is not None:
            stmt = stmt.where(Stock.location_id.in_(self._subtree(location)))
        if category is not None:
            stmt = stmt.where(Category.code == category)
        values = self._layer_values()
        return [
            StockLine(
                item_id=r[0],
                item_code=r[1],
                category_code=r[2],
                location_id=r[3],
                location_code=r[4],
                lot_id=r[5],
                lot_code=r[6],
                expires_on=r[7],
                quantity=r[8],
                value=values.get((r[0], r[3], _lot_key(r[5]))),
            )
            for r in self.db.execute(stmt)
        ]

    def _subtree(self, location: str) -> list[uuid.UUID]:
        tx = self.tx
        root = self._location(location)
        children: dict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
        for loc_id, parent in self.db.execute(
            sa.select(Location.id, Location.parent_id).where(Location.org_id == tx.org_id)
        ):
            children[parent].append(loc_id)
        out, todo = [], [root.id]
        while todo:
            current = todo.pop()
            out.append(current)
            todo.extend(children.get(current, []))
        return out

    def _layer_values(self) -> dict[tuple[uuid.UUID, uuid.UUID, str], Decimal]:
        tx = self.tx
        source = aliased(Move)
        rows = self.db.execute(
            sa.select(
                Layer.item_id, Layer.location_id, Layer.lot_key, Layer.quantity, source.unit_value
            )
            .join(source, source.id == Layer.source_id)
            .where(
                Layer.org_id == tx.org_id,
                Layer.quantity > 0,
                source.unit_value.is_not(None),
            )
        )
        out: dict[tuple[uuid.UUID, uuid.UUID, str], Decimal] = defaultdict(lambda: ZERO)
        for item_id, loc_id, lot_key, qty, unit_value in rows:
            out[(item_id, loc_id, lot_key)] += (qty * (unit_value or ZERO)).quantize(
                Decimal("0.01")
            )
        return dict(out)

    def valuation(self) -> Decimal:
        """The value of all stock on hand, from the unit values recorded at receipt."""
        self.tx.require("inventory.view")
        return sum(self._layer_values().values(), ZERO)

    def history(
        self, data: HistoryFilter | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> list[MoveRead]:
        """Movement history, newest first, filtered by item, location, kind, donation,
        recipient and time (``inventory.view``)."""
        tx = self.tx
        spec = coerce(HistoryFilter, data, kwargs)
        tx.require("inventory.view")
        stmt = sa.select(*Move.__table__.c).where(Move.org_id == tx.org_id)
        if spec.item is not None:
            stmt = stmt.where(Move.item_id == self._item(spec.item).id)
        if spec.location is not None:
            loc = self._location(spec.location).id
            stmt = stmt.where(sa.or_(Move.from_location_id == loc, Move.to_location_id == loc))
        if spec.kind is not None:
            stmt = stmt.where(Move.kind == spec.kind)
        if spec.donation is not None:
            stmt = stmt.where(Move.donation_ref == spec.donation)
        if spec.recipient is not None:
            stmt = stmt.where(Move.recipient_ref == spec.recipient)
        if spec.since is not None:
            stmt = stmt.where(Move.at >= spec.since)
        if spec.until is not None:
            stmt = stmt.where(Move.at < spec.until)
        rows = list(
            self.db.execute(stmt.order_by(Move.seq.desc()).limit(spec.limit).offset(spec.offset))
        )
        return self._move_reads(rows)

    def trace_donation(self, donation: str, *, donor_facing: bool = False) -> TraceReport:
        """Where a donation's goods went, exact to the unit (物资流向追溯报告), ``inventory.view``.

        Follows the goods through transfers and lots using the allocation rows (an indexed
        lookup, not a replay). Lines are moves of the donation's goods out of the organisation
        (and reversals of them, with negative quantities). ``donor_facing=True`` replaces the
        references of beneficiaries and households with "Beneficiary 1", "Household 2"...
        Donor-facing reports need no permission when the organisation publishes them
        (``org.settings["inventory.public_trace"]``).
        """
        tx = self.tx
        if not (donor_facing and self._public_trace()):
            tx.require("inventory.view")
        params = {"org": tx.org_id, "donation": donation}
        sources = self.db.execute(self.sql.donation_sources, params).all()
        if not sources:
            raise NotFound("Donation", donation)
        received = sum((s[1] for s in sources), ZERO)
        donor = next((s[2] for s in sources if s[2]), None)
        on_hand = self.db.scalar(self.sql.donation_on_hand, params)
        rows = self.db.execute(self.sql.donation_trace, params).all()
        per_move: dict[uuid.UUID, dict[str, Any]] = {}
        totals: dict[str, Decimal] = defaultdict(lambda: Q0)
        for r in rows:
            qty, move_id, at, kind, item_code, lot_code, src_kind, dst_kind = r[:8]
            out_of_stock = src_kind in HOLDING_KINDS and dst_kind not in HOLDING_KINDS
            into_stock = src_kind not in HOLDING_KINDS and dst_kind in HOLDING_KINDS
            if kind == "receive" or not (out_of_stock or into_stock):
                continue
            if kind == "adjust" and into_stock:
                continue  # found stock is its own source, never part of a donation
            signed = qty if out_of_stock else -qty
            bucket = dst_kind if out_of_stock else src_kind
            totals[bucket] += signed
            line = per_move.get(move_id)
            if line is None:
                per_move[move_id] = line = {
                    "move_id": move_id,
                    "at": at,
                    "kind": kind,
                    "item_code": item_code,
                    "lot_code": lot_code,
                    "quantity": ZERO,
                    "destination": r[8] if out_of_stock else r[9],
                    "recipient_kind": r[10],
                    "recipient": r[11],
                    "approved_by": r[12],
                    "second_approved_by": r[13],
                    "reverses_id": r[14],
                }
            line["quantity"] += signed
        lines = list(per_move.values())
        if donor_facing:
            _mask(lines)
        return TraceReport(
            donation=donation,
            donor=donor,
            donor_facing=donor_facing,
            received=received,
            returned=totals["donor"],
            on_hand=_quantity(on_hand),
            distributed=totals["beneficiary"],
            scrapped=totals["scrap"],
            adjusted=totals["adjustment"],
            lines=tuple(TraceLine.model_validate(line) for line in lines),
        )

    def _public_trace(self) -> bool:
        return bool(self.tx.require_org().settings.get(PUBLIC_TRACE_SETTING, False))

    def donations(self, *, limit: int = 100) -> list[DonationRead]:
        """Donations received, newest first: reference, donor, when the goods first arrived
        (``inventory.view``, or anyone when the organisation publishes its trace reports)."""
        tx = self.tx
        if not self._public_trace():
            tx.require("inventory.view")
        first = sa.func.min(Move.at)
        rows = self.db.execute(
            sa.select(Move.donation_ref, sa.func.max(Move.donor_ref), first)
            .where(Move.org_id == tx.org_id, Move.kind == "receive", Move.donation_ref.is_not(None))
            .group_by(Move.donation_ref)
            .order_by(first.desc(), Move.donation_ref)
            .limit(limit)
        )
        return [
            DonationRead(donation=ref, donor=donor, first_received_at=at) for ref, donor, at in rows
        ]

    def trace_issue(self, move_or_group: uuid.UUID | str) -> list[IssueSource]:
        """For an issue (a move id or an operation's ``group_id``): the donations it came from."""
        tx = self.tx
        tx.require("inventory.view")
        ident = _as_uuid(move_or_group)
        if ident is None:
            raise NotFound("Move", move_or_group)
        move_ids = list(
            tx.session.scalars(
                sa.select(Move.id).where(
                    Move.org_id == tx.org_id, sa.or_(Move.id == ident, Move.group_id == ident)
                )
            )
        )
        if not move_ids:
            raise NotFound("Move", move_or_group)
        source = aliased(Move)
        rows = self.db.execute(
            sa.select(
                Allocation.source_id,
                source.kind,
                source.donor_ref,
                source.donation_ref,
                Lot.code,
                source.at,
                sa.func.sum(Allocation.quantity),
            )
            .outerjoin(source, source.id == Allocation.source_id)
            .outerjoin(Lot, Lot.id == source.lot_id)
            .where(Allocation.move_id.in_(move_ids))
            .group_by(
                Allocation.source_id,
                source.kind,
                source.donor_ref,
                source.donation_ref,
                Lot.code,
                source.at,
                source.seq,
            )
            .order_by(source.seq)
        )
        return [
            IssueSource(
                source_id=r[0],
                kind=r[1],
                donor=r[2],
                donation=r[3],
                lot_code=r[4],
                received_at=r[5],
                quantity=Decimal(r[6]).quantize(Decimal("0.0001")),
            )
            for r in rows
        ]

    def expiring(self, *, within_days: int = 30, today: dt.date | None = None) -> list[ExpiringLot]:
        """Lots with stock that expire within ``within_days`` (or have expired), soonest first."""
        tx = self.tx
        tx.require("inventory.view")
        return self._expiring(within_days, today)

    def _expiring(self, within_days: int, today: dt.date | None) -> list[ExpiringLot]:
        tx = self.tx
        within_days = check("within_days", _WITHIN_DAYS, within_days)
        today = check("today", Day | None, today) or utcnow().date()
        limit = today + dt.timedelta(days=within_days)
        rows = self.db.execute(
            sa.select(
                Lot.id,
                Lot.code,
                Lot.item_id,
                Item.code,
                Lot.expires_on,
                sa.func.sum(Stock.quantity),
            )
            .join(Stock, Stock.lot_id == Lot.id)
            .join(Item, Item.id == Lot.item_id)
            .join(Location, Location.id == Stock.location_id)
            .where(
                Lot.org_id == tx.org_id,
                Lot.expires_on.is_not(None),
                Lot.expires_on <= limit,
                Location.kind.in_(HOLDING_KINDS),
            )
            .group_by(Lot.id, Lot.code, Lot.item_id, Item.code, Lot.expires_on)
            .having(sa.func.sum(Stock.quantity) > 0)
            .order_by(Lot.expires_on, Item.code, Lot.code)
        )
        return [
            ExpiringLot(
                lot_id=r[0],
                lot_code=r[1],
                item_id=r[2],
                item_code=r[3],
                expires_on=r[4],
                days_left=(r[4] - today).days if r[4] else 0,
                quantity=Decimal(r[5]).quantize(Decimal("0.0001")),
            )
            for r in rows
        ]

    def warn_expiring(
        self, *, within_days: int = 30, today: dt.date | None = None
    ) -> list[ExpiringLot]:
        """Fire ``ngo_kit_lot_expiring`` for each expiring lot not yet warned today.

        Run daily by ``ngo-kit inventory warn-expiring`` (cron-friendly: running it twice on
        one day warns once). Needs ``inventory.view``. Returns the lots warned about.
        """
        tx = self.tx
        tx.require("inventory.view")
        day = check("today", Day | None, today) or utcnow().date()
        warned: list[ExpiringLot] = []
        for lot in self._expiring(within_days, day):
            claimed = self.db.execute(
                sa.update(Lot)
                .where(
                    Lot.id == lot.lot_id,
                    Lot.org_id == tx.org_id,
                    sa.or_(Lot.warned_on.is_(None), Lot.warned_on < day),
                )
                .values(warned_on=day)
            )
            if claimed.rowcount == 1:
                tx.emit("ngo_kit_lot_expiring", lot=lot)
                warned.append(lot)
        return warned

    def low_stock(self) -> list[LowStock]:
        """Items at or below their reorder level, by code (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        on_hand = sa.func.coalesce(sa.func.sum(Stock.quantity), 0)
        rows = self.db.execute(
            sa.select(Item.id, Item.code, on_hand, Item.reorder_level)
            .outerjoin(
                Stock,
                sa.and_(
                    Stock.item_id == Item.id,
                    Stock.location_id.in_(
                        sa.select(Location.id).where(
                            Location.org_id == tx.org_id, Location.kind == "internal"
                        )
                    ),
                ),
            )
            .where(Item.org_id == tx.org_id, Item.reorder_level.is_not(None))
            .group_by(Item.id, Item.code, Item.reorder_level)
            .having(on_hand <= Item.reorder_level)
            .order_by(Item.code)
        )
        return [
            LowStock(
                item_id=r[0],
                item_code=r[1],
                on_hand=Decimal(r[2]).quantize(Decimal("0.0001")),
                reorder_level=r[3],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------------------------
    # files: export and import

    def export_stock(
        self, fmt: str = "csv", *, location: str | None = None, category: str | None = None
    ) -> bytes:
        """Stock on hand as a CSV or XLSX file (``inventory.view``)."""
        check_format(fmt)
        lines = self.stock_on_hand(location=location, category=category)
        header = ["location", "item", "category", "lot", "expires_on", "quantity", "value"]
        rows = [
            (
                x.location_code,
                x.item_code,
                x.category_code,
                x.lot_code,
                x.expires_on,
                x.quantity,
                x.value,
            )
            for x in lines
        ]
        return write_rows(header, rows, fmt)

    def export_history(self, fmt: str = "csv", **filters: Any) -> bytes:
        """Movement history (the filters of ``history``) as a CSV or XLSX file (``inventory.view``)."""
        check_format(fmt)
        moves = self.history(**filters)
        codes = {loc.id: loc.code for loc in self.locations()}
        items = {it.id: it.code for it in self.items()}
        lots: dict[uuid.UUID | None, str] = dict(
            self.db.execute(
                sa.select(Lot.id, Lot.code).where(
                    Lot.org_id == self.tx.org_id,
                    Lot.id.in_({m.lot_id for m in moves if m.lot_id is not None}),
                )
            ).all()
        )
        header = [
            "seq", "at", "kind", "item", "lot", "from", "to", "quantity", "unit_value", "donor",
            "donation", "recipient_kind", "recipient", "approved_by", "second_approved_by",
            "reason", "reverses",
        ]  # fmt: skip
        rows = [
            (
                m.seq,
                m.at,
                m.kind,
                items.get(m.item_id),
                lots.get(m.lot_id),
                codes.get(m.from_location_id),
                codes.get(m.to_location_id),
                m.quantity,
                m.unit_value,
                m.donor_ref,
                m.donation_ref,
                m.recipient_kind,
                m.recipient_ref,
                m.approved_by,
                m.second_approved_by,
                m.reason,
                m.reverses_id,
            )
            for m in moves
        ]
        return write_rows(header, rows, fmt)

    def import_items(self, data: bytes, fmt: str = "csv") -> ImportReport:
        """Create catalogue items from a file, all or none (``inventory.manage``).

        Columns: ``code, name, name_zh, category, unit, tracked_by_lot, perishable,
        shelf_life_days, reorder_level, allow_negative, pack_units`` (``box=12; case=48``).
        When any row is wrong nothing is written and the report lists every problem by row.
        """
        tx = self.tx
        tx.require("inventory.manage")
        rows = read_rows(data, fmt)
        errors = _unknown_columns(rows, ITEM_COLUMNS)
        codes = [str(r.get("code")) for r in rows if r.get("code")]
        taken = set(
            self.db.scalars(
                sa.select(Item.code).where(Item.org_id == tx.org_id, Item.code.in_(codes))
            )
        )
        categories = set(
            self.db.scalars(sa.select(Category.code).where(Category.org_id == tx.org_id))
        )
        specs: list[ItemIn] = []
        seen: set[str] = set()
        for n, row in enumerate(rows, start=2):
            payload: dict[str, Any] = {k: v for k, v in row.items() if k in ITEM_COLUMNS}
            try:
                for flag in ("tracked_by_lot", "perishable", "allow_negative"):
                    if flag in payload:
                        payload[flag] = _parse(flag, payload[flag], parse_bool, "bool_parsing")
                if "pack_units" in payload:
                    payload["pack_units"] = _parse(
                        "pack_units", payload["pack_units"], parse_packs, "invalid"
                    )
                spec = ItemIn.model_validate(payload)
            except ValidationFailed as exc:
                errors.extend(_row_errors(n, exc))
                continue
            if spec.code in seen:
                errors.append(_row_error(n, "code", "duplicate_in_file", value=spec.code))
            elif spec.code in taken:
                errors.append(_row_error(n, "code", "code_taken", value=spec.code))
            if spec.category is not None and spec.category not in categories:
                errors.append(_row_error(n, "category", "unknown_reference", value=spec.category))
            seen.add(spec.code)
            specs.append(spec)
        if errors:
            return ImportReport(ok=False, rows=len(rows), written=0, errors=tuple(errors))
        with tx.savepoint():
            for spec in specs:
                self._create_item(spec)
        return ImportReport(ok=True, rows=len(rows), written=len(specs))

    def import_opening_stock(
        self, data: bytes, fmt: str = "csv", *, donation: str = "opening-stock"
    ) -> ImportReport:
        """Receive opening stock from a file, all or none (``inventory.receive``).

        Columns: ``item, location, quantity, unit, lot, expires_on, unit_value, donor,
        donation`` (``donation`` defaults to the argument, so the opening stock is traceable
        like any receipt). When any row is wrong nothing is written and the report lists every
        problem by row.
        """
        tx = self.tx
        tx.require("inventory.receive")
        rows = read_rows(data, fmt)
        errors = _unknown_columns(rows, STOCK_COLUMNS)
        specs: list[ReceiveIn] = []
        for n, row in enumerate(rows, start=2):
            payload: dict[str, Any] = {
                ("to" if k == "location" else k): v for k, v in row.items() if k in STOCK_COLUMNS
            }
            payload.setdefault("donation", donation)
            try:
                spec = ReceiveIn.model_validate(payload)
                item = self._item(spec.item)
                self._holding(spec.to, "location")
                if spec.lot is None and item.tracked_by_lot:
                    raise ValidationFailed("lot", "lot_required")
                if spec.lot is not None and not item.tracked_by_lot:
                    raise ValidationFailed("lot", "lot_not_tracked")
                self._base_quantity(item, spec.quantity, spec.unit)
            except ValidationFailed as exc:
                errors.extend(_row_errors(n, exc))
                continue
            except NotFound as exc:
                field_name = {"Item": "item", "Location": "location"}.get(exc.kind, "item")
                errors.append(_row_error(n, field_name, "unknown_reference", value=exc.ident))
                continue
            specs.append(spec)
        if errors:
            return ImportReport(ok=False, rows=len(rows), written=0, errors=tuple(errors))
        with tx.savepoint():
            self._lock_receipt_rows(specs)
            for spec in specs:
                self._receive(spec, None)
        return ImportReport(ok=True, rows=len(rows), written=len(specs))

    # ------------------------------------------------------------------------------------
    # needs

    def create_need(
        self, data: NeedIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> NeedRead:
        """Record a need (需求) for an item by a beneficiary, site or project (``inventory.issue``)."""
        tx = self.tx
        spec = coerce(NeedIn, data, kwargs)
        tx.require("inventory.issue")
        item = self._item(spec.item)
        values = {
            "id": new_id(),
            "org_id": tx.org_id,
            "item_id": item.id,
            "quantity": self._base_quantity(item, spec.quantity, None),
            "fulfilled": ZERO,
            "requester_ref": spec.requester,
            "requester_kind": spec.requester_kind,
            "priority": spec.priority,
            "state": "open",
            "note": spec.note,
            "created_at": utcnow(),
        }
        self.db.execute(sa.insert(Need).values(values))
        tx.audit("inventory.need_created", "inventory_need", values["id"], f"need of {item.code}")
        return NeedRead.model_validate(values)

    def need(self, need_id: uuid.UUID | str) -> NeedRead:
        """One need (``inventory.view``)."""
        self.tx.require("inventory.view")
        return NeedRead.model_validate(self.tx.get_owned(Need, need_id, "Need"))

    def needs(self, *, state: str | None = "open") -> list[NeedRead]:
        """Needs by priority (1 first), then age (``inventory.view``)."""
        tx = self.tx
        tx.require("inventory.view")
        stmt = sa.select(Need).where(Need.org_id == tx.org_id)
        if state is not None:
            stmt = stmt.where(Need.state == state)
        rows = tx.session.scalars(stmt.order_by(Need.priority, Need.created_at, Need.id))
        return [NeedRead.model_validate(r) for r in rows]

    def cancel_need(self, need_id: uuid.UUID | str) -> NeedRead:
        """Close an open need without fulfilling it (``inventory.issue``)."""
        tx = self.tx
        tx.require("inventory.issue")
        row: Need = tx.get_owned(Need, need_id, "Need")
        done = self.db.execute(
            sa.update(Need).where(Need.id == row.id, Need.state == "open").values(state="cancelled")
        )
        if done.rowcount != 1:
            raise ValidationFailed("need", "need_closed")
        tx.audit("inventory.need_cancelled", "inventory_need", row.id, "need cancelled")
        tx.session.refresh(row)
        return NeedRead.model_validate(row)

    def needs_vs_stock(self) -> list[NeedGap]:
        """Open needs against stock on hand, per item: the shortfall is what to ask donors for."""
        tx = self.tx
        tx.require("inventory.view")
        rows = self.db.execute(
            sa.select(Need.item_id, Item.code, sa.func.sum(Need.quantity - Need.fulfilled))
            .join(Item, Item.id == Need.item_id)
            .where(Need.org_id == tx.org_id, Need.state == "open")
            .group_by(Need.item_id, Item.code)
            .order_by(Item.code)
        )
        out = []
        for item_id, code, needed in rows:
            needed = Decimal(needed).quantize(Decimal("0.0001"))
            have = self._on_hand(item_id)
            out.append(
                NeedGap(
                    item_id=item_id,
                    item_code=code,
                    needed=needed,
                    on_hand=have,
                    shortfall=max(needed - have, ZERO),
                )
            )
        return out

    def _open_need(self, need_id: uuid.UUID, item: ItemRow) -> Need:
        need: Need = self.tx.get_owned(Need, need_id, "Need")
        if need.state != "open":
            raise ValidationFailed("need", "need_closed")
        if need.item_id != item.id:
            raise ValidationFailed("need", "need_other_item")
        return need

    def _fulfil(self, need: Need, quantity: Decimal) -> None:
        tx = self.tx
        done = self.db.execute(
            sa.update(Need)
            .where(Need.id == need.id, Need.state == "open")
            .values(fulfilled=Need.fulfilled + quantity)
        )
        if done.rowcount != 1:
            raise ValidationFailed("need", "need_closed")
        closed = self.db.execute(
            sa.update(Need)
            .where(Need.id == need.id, Need.state == "open", Need.fulfilled >= Need.quantity)
            .values(state="fulfilled")
        )
        if closed.rowcount == 1:
            tx.session.refresh(need)
            tx.emit("ngo_kit_need_fulfilled", need=NeedRead.model_validate(need))

    def _unfulfil(self, need_id: uuid.UUID, quantity: Decimal) -> None:
        tx = self.tx
        self.db.execute(
            sa.update(Need)
            .where(Need.id == need_id, Need.org_id == tx.org_id)
            .values(
                fulfilled=Need.fulfilled - quantity,
                state=sa.case((Need.state == "fulfilled", "open"), else_=Need.state),
            )
        )

    # ------------------------------------------------------------------------------------
    # documents: multi-line receipts and dispatches

    def _second_approval_threshold(self) -> Decimal | None:
        raw = self.tx.require_org().settings.get(SECOND_APPROVAL_SETTING)
        return None if raw is None else Decimal(str(raw))

    def create_document(
        self, data: DocumentIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> DocumentRead:
        """A draft receipt (``inventory.receive``) or dispatch (``inventory.issue``).

        ``NotFound`` for a location, item or ``need`` this organisation does not have.
        """
        tx = self.tx
        spec = coerce(DocumentIn, data, kwargs)
        tx.require("inventory.receive" if spec.kind == "receipt" else "inventory.issue")
        loc = self._holding(spec.location, "location")
        if spec.kind == "dispatch" and spec.recipient is None:
            raise ValidationFailed("recipient", "missing")
        if spec.need is not None:  # another organisation's need is not found, as everywhere
            tx.get_owned(Need, spec.need, "Need")
        doc_id = new_id()
        lines = []
        for n, line in enumerate(spec.lines, start=1):
            item = self._item(line.item)
            if line.lot is None and item.tracked_by_lot and spec.kind == "receipt":
                raise ValidationFailed(f"lines.{n - 1}.lot", "lot_required")
            if line.lot is not None and not item.tracked_by_lot:
                raise ValidationFailed(f"lines.{n - 1}.lot", "lot_not_tracked")
            lines.append(
                {
                    "id": new_id(),
                    "org_id": tx.org_id,
                    "document_id": doc_id,
                    "line_no": n,
                    "item_id": item.id,
                    "quantity": self._base_quantity(item, line.quantity, line.unit),
                    "lot_code": line.lot,
                    "expires_on": line.expires_on,
                    "unit_value": line.unit_value,
                }
            )
        values = {
            "id": doc_id,
            "org_id": tx.org_id,
            "kind": spec.kind,
            "reference": spec.reference,
            "state": "draft",
            "location_id": loc.id,
            "donor_ref": spec.donor,
            "donation_ref": spec.donation,
            "recipient_ref": spec.recipient,
            "recipient_kind": spec.recipient_kind or ("beneficiary" if spec.recipient else None),
            "need_id": spec.need,
            "created_by": actor_label(tx.actor),
            "notes": spec.notes,
            "created_at": utcnow(),
        }
        with tx.translate_integrity(AlreadyExists("Document", spec.reference)):
            self.db.execute(sa.insert(Document).values(values))
        self.db.execute(sa.insert(DocumentLine), lines)
        tx.audit(f"inventory.{spec.kind}_drafted", "inventory_document", doc_id, spec.reference)
        return self.document(doc_id)

    def document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """A document with its lines and, once done, the operations it posted."""
        tx = self.tx
        tx.require("inventory.view")
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.session.refresh(doc)
        lines = tx.session.scalars(
            sa.select(DocumentLine)
            .where(DocumentLine.document_id == doc.id)
            .order_by(DocumentLine.line_no)
        )
        groups = tx.session.scalars(
            sa.select(Move.group_id)
            .where(Move.org_id == tx.org_id, Move.document_id == doc.id)
            .group_by(Move.group_id)
            .order_by(sa.func.min(Move.seq))
        )
        return DocumentRead.model_validate(
            {
                **doc.__dict__,
                "lines": tuple(DocumentLineRead.model_validate(x) for x in lines),
                "group_ids": tuple(groups),
            }
        )

    def _set_state(
        self, doc: Document, expected: tuple[str, ...], state: str, **extra: Any
    ) -> None:
        done = self.db.execute(
            sa.update(Document)
            .where(Document.id == doc.id, Document.state.in_(expected))
            .values(state=state, **extra)
        )
        if done.rowcount != 1:
            raise ValidationFailed(
                "state", "wrong_state", state=doc.state, expected=" or ".join(expected)
            )

    def confirm_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """draft -> confirmed: the lines are final (same permission as creating it)."""
        tx = self.tx
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.require("inventory.receive" if doc.kind == "receipt" else "inventory.issue")
        self._set_state(doc, ("draft",), "confirmed")
        tx.audit("inventory.document_confirmed", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)

    def approve_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """Approve a confirmed dispatch (``inventory.approve``).

        The first call records the approver; above the organisation's threshold a second,
        different person must approve too (``same_approver`` otherwise).
        """
        tx = self.tx
        tx.require("inventory.approve")
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        if doc.state != "confirmed":
            raise ValidationFailed("state", "wrong_state", state=doc.state, expected="confirmed")
        me = actor_label(tx.actor)
        if doc.approved_by is None:
            column = Document.approved_by
        elif doc.approved_by == me:
            raise ValidationFailed("approved_by", "same_approver")
        else:
            column = Document.second_approved_by
        done = self.db.execute(
            sa.update(Document).where(Document.id == doc.id, column.is_(None)).values({column: me})
        )
        if done.rowcount != 1:
            raise ValidationFailed("approved_by", "same_approver")
        tx.audit("inventory.document_approved", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)

    def complete_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """confirmed -> done: post every line as a receive or issue, all or nothing.

        A dispatch needs an approver, and a second one above the threshold.
        """
        tx = self.tx
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.require("inventory.receive" if doc.kind == "receipt" else "inventory.issue")
        lines = list(
            tx.session.scalars(
                sa.select(DocumentLine)
                .where(DocumentLine.document_id == doc.id)
                .order_by(DocumentLine.line_no)
            )
        )
        if doc.kind == "dispatch":
            total = sum((x.quantity for x in lines), ZERO)
            threshold = self._second_approval_threshold()
            if doc.approved_by is None:
                raise ValidationFailed("approved_by", "missing")
            if threshold is not None and total > threshold and doc.second_approved_by is None:
                raise ValidationFailed(
                    "second_approved_by", "needs_second_approval", threshold=threshold
                )
        self._set_state(doc, ("confirmed",), "done")
        loc = self._location(doc.location_id)
        items = [self._item(line.item_id) for line in lines]
        if doc.kind == "receipt":
            receipts = [
                ReceiveIn(
                    item=item.code,
                    quantity=line.quantity,
                    to=loc.code,
                    lot=line.lot_code,
                    expires_on=line.expires_on,
                    unit_value=line.unit_value,
                    donor=doc.donor_ref,
                    donation=doc.donation_ref,
                )
                for item, line in zip(items, lines, strict=True)
            ]
            self._lock_receipt_rows(receipts)
            for receipt in receipts:
                self._receive(receipt, doc.id)
        else:
            self._lock_in_order([item.id for item in items], [loc.id])
            for item, line in zip(items, lines, strict=True):
                spec = IssueIn(
                    item=item.code,
                    quantity=line.quantity,
                    from_=loc.code,
                    lot=line.lot_code,
                    recipient=doc.recipient_ref or "",
                    recipient_kind=doc.recipient_kind or "beneficiary",
                    approved_by=doc.approved_by,
                    second_approved_by=doc.second_approved_by,
                    need=doc.need_id,
                )
                self._issue(spec, doc.id)
        tx.audit("inventory.document_done", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)

    def cancel_document(self, doc_id: uuid.UUID | str) -> DocumentRead:
        """draft or confirmed -> cancelled; nothing was posted, so nothing is undone."""
        tx = self.tx
        doc: Document = tx.get_owned(Document, doc_id, "Document")
        tx.require("inventory.receive" if doc.kind == "receipt" else "inventory.issue")
        self._set_state(doc, ("draft", "confirmed"), "cancelled")
        tx.audit("inventory.document_cancelled", "inventory_document", doc.id, doc.reference)
        return self.document(doc.id)


ITEM_COLUMNS = (
    "code", "name", "name_zh", "category", "unit", "tracked_by_lot", "perishable",
    "shelf_life_days", "reorder_level", "allow_negative", "pack_units",
)  # fmt: skip
STOCK_COLUMNS = (
    "item", "location", "quantity", "unit", "lot", "expires_on", "unit_value", "donor",
    "donation",
)  # fmt: skip


def _parse(field_name: str, value: Any, parser: Callable[[Any], Any], rule: str) -> Any:
    try:
        return parser(value)
    except ValueError:
        raise ValidationFailed(field_name, rule) from None


def _row_error(row: int, field_name: str, rule: str, **params: Any) -> RowError:
    error = ValidationFailed(field_name, rule, **params)
    return RowError(row=row, field=field_name, rule=rule, message=error.message)


def _row_errors(row: int, exc: ValidationFailed) -> list[RowError]:
    return [RowError(row=row, field=e.field, rule=e.rule, message=e.message) for e in exc.errors]


def _unknown_columns(rows: list[dict[str, Any]], known: tuple[str, ...]) -> list[RowError]:
    names = sorted({k for r in rows for k in r} - set(known))
    return [_row_error(1, name, "extra_forbidden") for name in names]


def taken(out: list[tuple[uuid.UUID | None, int, Decimal]], source_id: uuid.UUID | None) -> Decimal:
    """How much of ``source_id`` this operation took already."""
    return sum((q for s, _seq, q in out if s == source_id), ZERO)


MASKS = {"beneficiary": "Beneficiary {number}", "household": "Household {number}"}


def _mask(lines: list[dict[str, Any]]) -> None:
    """Replace personal references with "Beneficiary 1", "Household 2"... (stable per report,
    in the caller's locale: 受助人 1, 家庭 2)."""
    numbers: dict[tuple[str, str], int] = {}
    counters: dict[str, int] = defaultdict(int)
    for line in lines:
        kind, ref = line["recipient_kind"], line["recipient"]
        if kind not in ("beneficiary", "household") or ref is None:
            continue
        if (kind, ref) not in numbers:
            counters[kind] += 1
            numbers[(kind, ref)] = counters[kind]
        line["recipient"] = gettext(MASKS[kind]).format(number=numbers[(kind, ref)])


class _Statements:
    """The hot statements, built once per dialect so a move pays for execution only."""

    def __init__(self, dialect: str) -> None:
        item, loc, lot = Item.__table__.c, Location.__table__.c, Lot.__table__.c
        stock: sa.Table = Stock.__table__  # type: ignore[assignment]
        layer: sa.Table = Layer.__table__  # type: ignore[assignment]
        self.item_by_code = sa.select(*item).where(
            item.org_id == bind("org", item.org_id), item.code == bind("code", item.code)
        )
        self.item_by_id = sa.select(*item).where(
            item.org_id == bind("org", item.org_id), item.id == bind("id", item.id)
        )
        self.locations = sa.select(*loc).where(
            loc.org_id == bind("org", loc.org_id),
            sa.or_(
                loc.code.in_(bind("codes", expanding=True)), loc.id.in_(bind("ids", expanding=True))
            ),
        )
        self.lot_by_code = sa.select(*lot).where(
            lot.org_id == bind("org", lot.org_id),
            lot.item_id == bind("item", lot.item_id),
            lot.code == bind("code", lot.code),
        )
        where = (
            stock.c.org_id == bind("org", stock.c.org_id),
            stock.c.item_id == bind("item", stock.c.item_id),
            stock.c.location_id == bind("loc", stock.c.location_id),
            stock.c.lot_key == bind("lot", stock.c.lot_key),
        )
        q = bind("q", stock.c.quantity)
        self.stock_take = (
            stock.update()
            .where(*where, stock.c.quantity >= bind("floor", stock.c.quantity))
            .values(quantity=stock.c.quantity - q)
            .with_hint(_BY_STOCK_KEY, dialect_name="mysql")
        )
        self.stock_read = sa.select(stock.c.quantity).where(*where)
        self.layers_fifo = (
            sa.select(layer.c.id, layer.c.source_id, layer.c.source_seq, layer.c.quantity)
            .where(
                layer.c.org_id == bind("org", layer.c.org_id),
                layer.c.item_id == bind("item", layer.c.item_id),
                layer.c.location_id == bind("loc", layer.c.location_id),
                layer.c.lot_key == bind("lot", layer.c.lot_key),
                layer.c.quantity > 0,
            )
            .order_by(layer.c.source_seq)
            .limit(LAYER_PAGE)
        )
        lq = bind("q", layer.c.quantity)
        self.layer_take = (
            layer.update()
            .where(
                layer.c.id == bind("layer", layer.c.id),
                layer.c.quantity >= bind("floor", layer.c.quantity),
            )
            .values(quantity=layer.c.quantity - lq)
        )
        self.stock_add = _upsert_add(
            dialect, stock, ("org_id", "item_id", "location_id", "lot_key")
        )
        self.layer_add = _upsert_add(
            dialect, layer, ("org_id", "item_id", "location_id", "lot_key", "source_id")
        )
        self.allocation = sa.insert(Allocation)
        # the trace of one donation: three indexed lookups, whatever the size of the ledger
        move = Move.__table__.c
        self.donation_sources = sa.select(move.id, move.quantity, move.donor_ref).where(
            move.org_id == bind("org", move.org_id),
            move.donation_ref == bind("donation", move.donation_ref),
            move.kind == "receive",
        )
        source_ids = self.donation_sources.with_only_columns(move.id).scalar_subquery()
        self.donation_on_hand = sa.select(sa.func.sum(layer.c.quantity)).where(
            layer.c.org_id == bind("org", layer.c.org_id), layer.c.source_id.in_(source_ids)
        )
        src, dst = aliased(Location), aliased(Location)
        self.donation_trace = (
            sa.select(
                Allocation.quantity,
                Move.id,
                Move.at,
                Move.kind,
                Item.code,
                Lot.code,
                src.kind,
                dst.kind,
                dst.code,
                src.code,
                Move.recipient_kind,
                Move.recipient_ref,
                Move.approved_by,
                Move.second_approved_by,
                Move.reverses_id,
                Move.seq,
            )
            .join(Move, Move.id == Allocation.move_id)
            .join(Item, Item.id == Move.item_id)
            .outerjoin(Lot, Lot.id == Move.lot_id)
            .join(src, src.id == Move.from_location_id)
            .join(dst, dst.id == Move.to_location_id)
            .where(
                Allocation.org_id == bind("org", Allocation.org_id),
                Allocation.source_id.in_(source_ids),
            )
            .order_by(Move.seq)
        )


_STATEMENTS: dict[str, _Statements] = {}


def _fast_builders() -> dict[str, Callable[[str], Any]]:
    def pick(name: str) -> Callable[[str], Any]:
        return lambda dialect: getattr(_statements_for(dialect), name)

    names = (
        "item_by_code", "item_by_id", "lot_by_code", "stock_take",
        "stock_read", "layers_fifo", "layer_take", "stock_add", "layer_add",
    )  # fmt: skip
    builders = {name: pick(name) for name in names}
    allocation: sa.Table = Allocation.__table__  # type: ignore[assignment]
    builders["allocation"] = lambda dialect: allocation.insert().values(
        {c.name: bind(c.name, c) for c in allocation.columns}
    )
    return builders


#: The hot statements, compiled once per dialect and run on the driver cursor.
_FAST = Statements(_fast_builders())


def _statements(connection: sa.Connection) -> _Statements:
    return _statements_for(connection.dialect.name)


def _statements_for(name: str) -> _Statements:
    found = _STATEMENTS.get(name)
    if found is None:
        found = _STATEMENTS[name] = _Statements(name)
    return found


def _upsert_add(dialect: str, table: sa.Table, keys: tuple[str, ...]) -> Any:
    """An INSERT of every column (bound by name) that adds ``quantity`` to an existing row."""
    values = {c.name: bind(c.name, c) for c in table.columns}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(table).values(values)
        return pg.on_conflict_do_update(
            index_elements=list(keys), set_={"quantity": table.c.quantity + pg.excluded.quantity}
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table).values(values)
        return lite.on_conflict_do_update(
            index_elements=list(keys), set_={"quantity": table.c.quantity + lite.excluded.quantity}
        )
    from sqlalchemy.dialects.mysql import insert as my_insert

    my = my_insert(table).values(values)
    return my.on_duplicate_key_update(quantity=table.c.quantity + my.inserted.quantity)


def _held(loc: LocationRow, field_name: str) -> LocationRow:
    """``loc`` when it holds stock; ``ValidationFailed`` naming ``field_name`` otherwise."""
    if loc.kind not in HOLDING_KINDS:
        raise ValidationFailed(field_name, "not_a_stock_location")
    return loc
