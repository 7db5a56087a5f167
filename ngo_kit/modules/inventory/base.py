"""What every part of ``tx.inventory`` shares: the unit of work, the catalogue look-ups, stock
row locking and the hot statements.

Quantities are ``Decimal`` in the item's base unit. Items and locations are read through a
per-kit cache (they never change once created); stock rows are locked in one order
(``_lock_in_order``) so that concurrent units of work never deadlock.
"""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ngo_kit.db import (
    QUANTITY_LIMIT,
    QUANTITY_PRECISION,
    QUANTITY_SCALE,
    QUANTITY_UNIT,
    new_id,
    utcnow,
)
from ngo_kit.errors import NotFound, ValidationFailed
from ngo_kit.modules.inventory.models import (
    HOLDING_KINDS,
    Allocation,
    Item,
    Layer,
    Location,
    Lot,
    Move,
    PackUnit,
    Stock,
)
from ngo_kit.modules.inventory.schemas import ItemRead, MoveRead, ReceiveIn, Source
from ngo_kit.statements import Row, Statements, bind

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.modules.inventory.service import InventoryService


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


class InventoryBase:
    """The state and look-ups the parts of :class:`InventoryService` share."""

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

    @property
    def _service(self) -> InventoryService:
        """This service as a whole, typed: how one part calls an operation of another."""
        return cast("InventoryService", self)

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

    def _second_approval_threshold(self) -> Decimal | None:
        raw = self.tx.require_org().settings.get(SECOND_APPROVAL_SETTING)
        return None if raw is None else Decimal(str(raw))

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


def _held(loc: LocationRow, field_name: str) -> LocationRow:
    """``loc`` when it holds stock; ``ValidationFailed`` naming ``field_name`` otherwise."""
    if loc.kind not in HOLDING_KINDS:
        raise ValidationFailed(field_name, "not_a_stock_location")
    return loc


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
