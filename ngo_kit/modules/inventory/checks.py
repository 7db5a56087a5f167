"""Integrity checks run by ``ngo-kit verify``: stock levels and layers against the ledger."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from ngo_kit.audit import Problem
from ngo_kit.modules.inventory.models import HOLDING_KINDS, Allocation, Layer, Location, Move, Stock

ZERO = Decimal(0)
Key = tuple[Any, ...]


def _lot_key(lot_id: uuid.UUID | None) -> str:
    return "" if lot_id is None else str(lot_id)


def _net(session: Session, quantity: Any, *group: Any, joins: Any = None) -> dict[Key, Decimal]:
    """Sum ``quantity`` into holding locations minus out of them, per (org, item, location, lot, *group)."""
    net: dict[Key, Decimal] = defaultdict(lambda: ZERO)
    for side, sign in (("to_location_id", 1), ("from_location_id", -1)):
        loc = aliased(Location)
        col = getattr(Move, side)
        stmt = sa.select(Move.org_id, Move.item_id, col, Move.lot_id, *group, sa.func.sum(quantity))
        if joins is not None:
            stmt = stmt.select_from(joins)
        stmt = stmt.join(loc, loc.id == col).where(loc.kind.in_(HOLDING_KINDS))
        stmt = stmt.group_by(Move.org_id, Move.item_id, col, Move.lot_id, *group)
        for row in session.execute(stmt):
            org, item, location, lot, *rest = row[:-1]
            net[(org, item, location, _lot_key(lot), *rest)] += sign * Decimal(row[-1])
    return net


class StockCheck:
    """Every stock level row equals the sum of the moves in and out of its (item, location, lot)."""

    name = "inventory_stock"

    def run(self, session: Session) -> list[Problem]:
        """Compare each row with the ledger; report rows that differ and sums with no row."""
        expected = _net(session, Move.quantity)
        actual = {
            (r.org_id, r.item_id, r.location_id, r.lot_key): r.quantity
            for r in session.execute(
                sa.select(
                    Stock.org_id, Stock.item_id, Stock.location_id, Stock.lot_key, Stock.quantity
                )
            )
        }
        problems = []
        for key in sorted(set(expected) | set(actual), key=str):
            want, have = expected.get(key, ZERO), actual.get(key, ZERO)
            if want != have:
                org, item, location, lot = key
                problems.append(
                    Problem(
                        self.name,
                        org,
                        f"stock of item {item} at location {location} lot {lot or '-'} is {have},"
                        f" but its moves sum to {want}",
                    )
                )
        return problems


class LayerCheck:
    """Every per-source layer equals the allocations of its source in and out, and is >= 0."""

    name = "inventory_layer"

    def run(self, session: Session) -> list[Problem]:
        """Compare layers with the allocation rows."""
        joins = sa.join(Allocation, Move, Move.id == Allocation.move_id)
        expected = {
            k: v
            for k, v in _net(
                session, Allocation.quantity, Allocation.source_id, joins=joins
            ).items()
            if k[4] is not None
        }
        actual = {
            (r.org_id, r.item_id, r.location_id, r.lot_key, r.source_id): r.quantity
            for r in session.execute(
                sa.select(
                    Layer.org_id,
                    Layer.item_id,
                    Layer.location_id,
                    Layer.lot_key,
                    Layer.source_id,
                    Layer.quantity,
                )
            )
        }
        problems = []
        for key in sorted(set(expected) | set(actual), key=str):
            want, have = expected.get(key, ZERO), actual.get(key, ZERO)
            if want != have or have < 0:
                problems.append(
                    Problem(
                        self.name,
                        key[0],
                        f"goods of source {key[4]} (item {key[1]}) at location {key[2]} are {have},"
                        f" but allocations sum to {want}",
                    )
                )
        return problems
