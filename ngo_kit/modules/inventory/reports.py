"""Reports: stock levels, valuation, movement history, donor traces, expiry and low stock,
and their CSV/XLSX exports."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import aliased

from ngo_kit.db import utcnow
from ngo_kit.errors import NotFound
from ngo_kit.i18n import gettext
from ngo_kit.modules.inventory.base import Q0, ZERO, InventoryBase, _as_uuid, _lot_key, _quantity
from ngo_kit.modules.inventory.files import check_format, write_rows
from ngo_kit.modules.inventory.models import (
    HOLDING_KINDS,
    Allocation,
    Category,
    Item,
    Layer,
    Location,
    Lot,
    Move,
    Stock,
)
from ngo_kit.modules.inventory.schemas import (
    DonationRead,
    ExpiringLot,
    HistoryFilter,
    IssueSource,
    LowStock,
    MoveRead,
    StockLine,
    TraceLine,
    TraceReport,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Day, Integer, check, coerce

#: Organisation setting: when true, anyone (no account needed) may read the donor-facing trace
#: reports and the list of donations, for a public transparency page.
PUBLIC_TRACE_SETTING = "inventory.public_trace"

#: How far ahead ``expiring`` looks, in days: at most a century.
_WITHIN_DAYS = Annotated[Integer, Field(ge=0, le=36500)]


class Reports(InventoryBase):
    """What is where, what it is worth, where a donation went, what expires or runs low."""

    @operation("GET /items/{item}/stock/{location}", permission="inventory.view")
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

    @operation("GET /items/{item}/on-hand", permission="inventory.view")
    def on_hand(self, item: str | uuid.UUID) -> Decimal:
        """An item's stock at all real locations, every lot (``inventory.view``)."""
        self.tx.require("inventory.view")
        return self._on_hand(self._item(item).id)

    @operation("GET /stock", permission="inventory.view", custom=True)
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

    @operation("GET /valuation", permission="inventory.view")
    def valuation(self) -> Decimal:
        """The value of all stock on hand, from the unit values recorded at receipt."""
        self.tx.require("inventory.view")
        return sum(self._layer_values().values(), ZERO)

    @operation("GET /moves", permission="inventory.view", custom=True)
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

    @operation("GET /donations/{donation}/trace", permission="inventory.view", custom=True)
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

    @operation("GET /donations", permission="inventory.view")
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

    @operation("GET /moves/{move_or_group}/sources", permission="inventory.view")
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

    @operation("GET /expiring-lots", permission="inventory.view")
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

    @operation("POST /expiring-lots/warn", permission="inventory.view", cli="warn-expiring")
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

    @operation("GET /low-stock", permission="inventory.view")
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

    @operation("GET /stock/export", permission="inventory.view", custom=True)
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

    @operation("GET /moves/export", permission="inventory.view", custom=True)
    def export_history(self, fmt: str = "csv", **filters: Any) -> bytes:
        """Movement history (the filters of ``history``) as a CSV or XLSX file (``inventory.view``)."""
        check_format(fmt)
        moves = self.history(**filters)
        codes = {loc.id: loc.code for loc in self._service.locations()}
        items = {it.id: it.code for it in self._service.items()}
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
