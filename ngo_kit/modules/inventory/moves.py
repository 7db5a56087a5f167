"""Moves: goods received, issued, transferred, scrapped, adjusted and reversed.

Every change of stock is a move between two locations, written to the hash-chained ledger
together with the stock level rows, the per-source layers and the allocation rows that make
the donor trace exact; lots are picked first-expiring-first-out.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ngo_kit import idempotency
from ngo_kit.audit import actor_label, append_chained_many
from ngo_kit.db import new_id, utcnow
from ngo_kit.errors import InsufficientStock, KeyReused, ValidationFailed
from ngo_kit.modules.inventory.base import (
    _UNKEYED,
    CHAIN,
    LAYER_PAGE,
    ZERO,
    InventoryBase,
    ItemRow,
    Keyed,
    LocationRow,
    LotRow,
    _lot_id,
    _lot_key,
)
from ngo_kit.modules.inventory.models import (
    HOLDING_KINDS,
    MOVE_FIELDS,
    Allocation,
    Layer,
    Lot,
    Move,
    Stock,
)
from ngo_kit.modules.inventory.schemas import (
    AdjustIn,
    IssueIn,
    MoveRead,
    Operation,
    ReceiveIn,
    ScrapIn,
    TransferIn,
)
from ngo_kit.operations import operation
from ngo_kit.schemas import Text, check, coerce


@dataclass
class _Portion:
    """Part of one operation: a quantity of one lot, and the sources it came from."""

    lot_key: str
    lot_id: uuid.UUID | None
    quantity: Decimal
    sources: list[tuple[uuid.UUID | None, int, Decimal]] = field(default_factory=list)


class Moves(InventoryBase):
    """Receipts, issues, transfers, scrap, stocktake adjustments and reversals."""

    @operation(
        "POST /receipts",
        permission="inventory.receive",
        status=201,
        errors=(KeyReused,),
        custom=True,
    )
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

    @operation(
        "POST /issues",
        permission="inventory.issue",
        status=201,
        errors=(InsufficientStock, KeyReused),
        custom=True,
    )
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
        need = self._service._open_need(spec.need, item) if spec.need is not None else None

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
                self._service._fulfil(need, quantity)
            return op

        return self._idempotent(keyed, write)

    @operation(
        "POST /transfers",
        permission="inventory.issue",
        status=201,
        errors=(InsufficientStock, KeyReused),
    )
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

    @operation(
        "POST /scraps",
        permission="inventory.adjust",
        status=201,
        errors=(InsufficientStock, KeyReused),
    )
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

    @operation(
        "POST /adjustments",
        permission="inventory.adjust",
        status=201,
        errors=(InsufficientStock, KeyReused),
    )
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

    @operation(
        "POST /moves/{move_id}/reverse",
        permission="inventory.adjust",
        status=201,
        errors=(InsufficientStock, KeyReused),
    )
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
                self._service._unfulfil(original.need_id, original.quantity)
            return op

        try:
            return self._idempotent(keyed, write)
        except sa.exc.IntegrityError:  # a concurrent reversal of the same move won
            raise ValidationFailed("move_id", "already_reversed") from None

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


def taken(out: list[tuple[uuid.UUID | None, int, Decimal]], source_id: uuid.UUID | None) -> Decimal:
    """How much of ``source_id`` this operation took already."""
    return sum((q for s, _seq, q in out if s == source_id), ZERO)
