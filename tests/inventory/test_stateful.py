"""A hypothesis state machine over receive / issue / transfer / adjust / scrap / reverse.

Invariant after every step: stock levels equal a plain model of the moves and are never
negative. At the end of each example: each donation's trace adds up to what was received, and
``kit.verify()`` (chain, stock == sum of moves, layers == sum of allocations) finds nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ngo_kit import SYSTEM, InsufficientStock, ValidationFailed
from ngo_kit.testing import KitFactory

D = Decimal
LOCATIONS = ("wh", "shelf")
DONATIONS = ("D-1", "D-2", "D-3")
#: (item code, lot code or None)
STOCK = (("kit", None), ("milk", "A"), ("milk", "B"))
quantities = st.integers(min_value=1, max_value=12).map(D)
stock_keys = st.sampled_from(STOCK)
locations = st.sampled_from(LOCATIONS)
_orgs = itertools.count()


def test_stock_and_traces_stay_exact_under_random_operations(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["inventory"])

    class Inventory(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            slug = f"org-{next(_orgs)}-{uuid.uuid4().hex[:6]}"
            self.org = kit.create_organisation(slug, "Stateful")
            self.model: dict[tuple[str, str | None, str], Decimal] = defaultdict(lambda: D(0))
            self.moves: list[
                tuple[uuid.UUID, str, str | None, str | None, str | None, Decimal]
            ] = []
            self.reversed: set[uuid.UUID] = set()
            self.received: set[str] = set()
            with self._tx() as tx:
                inv = tx.inventory
                inv.create_item(code="kit", name="Comfort kit")
                inv.create_item(code="milk", name="Milk", tracked_by_lot=True)
                inv.create_location(code="wh", name="Warehouse")
                inv.create_location(code="shelf", name="Shelf", parent="wh")
                for lot in ("A", "B"):  # a count of nothing opens the lot without a move
                    inv.adjust(item="milk", lot=lot, location="wh", counted=0, reason="open")

        def _tx(self) -> Any:
            return kit.begin(org=self.org, actor=SYSTEM)

        def _attempt(self, item: str, lot: str | None, loc: str, qty: Decimal, call: Any) -> Any:
            enough = self.model[(item, lot, loc)] >= qty
            try:
                with self._tx() as tx:
                    op = call(tx.inventory)
            except InsufficientStock:
                assert not enough, f"refused although {self.model[(item, lot, loc)]} on hand"
                return None
            assert enough, "allowed although short"
            return op

        def _record(
            self, op: Any, item: str, lot: str | None, src: str | None, dst: str | None
        ) -> None:
            for m in op.moves:
                self.moves.append((m.id, item, lot, src, dst, m.quantity))

        @rule(key=stock_keys, loc=locations, qty=quantities, donation=st.sampled_from(DONATIONS))
        def receive(
            self, key: tuple[str, str | None], loc: str, qty: Decimal, donation: str
        ) -> None:
            item, lot = key
            with self._tx() as tx:
                op = tx.inventory.receive(
                    item=item, lot=lot, quantity=qty, to=loc, donation=donation
                )
            self.model[(item, lot, loc)] += qty
            self.received.add(donation)
            self._record(op, item, lot, None, loc)

        @rule(key=stock_keys, loc=locations, qty=quantities)
        def issue(self, key: tuple[str, str | None], loc: str, qty: Decimal) -> None:
            item, lot = key
            op = self._attempt(
                item, lot, loc, qty,
                lambda inv: inv.issue(item=item, lot=lot, quantity=qty, from_=loc, recipient="r"),
            )  # fmt: skip
            if op is not None:
                self.model[(item, lot, loc)] -= qty
                self._record(op, item, lot, loc, None)

        @rule(key=stock_keys, qty=quantities, forward=st.booleans())
        def transfer(self, key: tuple[str, str | None], qty: Decimal, forward: bool) -> None:
            item, lot = key
            src, dst = LOCATIONS if forward else LOCATIONS[::-1]
            op = self._attempt(
                item, lot, src, qty,
                lambda inv: inv.transfer(item=item, lot=lot, quantity=qty, from_=src, to=dst),
            )  # fmt: skip
            if op is not None:
                self.model[(item, lot, src)] -= qty
                self.model[(item, lot, dst)] += qty
                self._record(op, item, lot, src, dst)

        @rule(key=stock_keys, loc=locations, qty=quantities)
        def scrap(self, key: tuple[str, str | None], loc: str, qty: Decimal) -> None:
            item, lot = key
            op = self._attempt(
                item, lot, loc, qty,
                lambda inv: inv.scrap(item=item, lot=lot, quantity=qty, from_=loc, reason="x"),
            )  # fmt: skip
            if op is not None:
                self.model[(item, lot, loc)] -= qty
                self._record(op, item, lot, loc, None)

        @rule(key=stock_keys, loc=locations, counted=st.integers(0, 20).map(D))
        def adjust(self, key: tuple[str, str | None], loc: str, counted: Decimal) -> None:
            item, lot = key
            with self._tx() as tx:
                op = tx.inventory.adjust(
                    item=item, lot=lot, location=loc, counted=counted, reason="count"
                )
            before = self.model[(item, lot, loc)]
            self.model[(item, lot, loc)] = counted
            for m in op.moves:
                up = counted > before
                self.moves.append(
                    (m.id, item, lot, None if up else loc, loc if up else None, m.quantity)
                )

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            open_moves = [m for m in self.moves if m[0] not in self.reversed]
            if not open_moves:
                return
            move_id, item, lot, src, dst, qty = data.draw(st.sampled_from(open_moves))
            try:
                with self._tx() as tx:
                    op = tx.inventory.reverse(move_id, reason="mistake")
            except InsufficientStock:
                assert dst is not None, "goods coming back from outside cannot be short"
                return  # the goods moved on since
            except ValidationFailed as exc:
                raise AssertionError(exc.rule) from exc
            assert dst is None or self.model[(item, lot, dst)] >= qty
            self.reversed.add(move_id)
            if dst is not None:
                self.model[(item, lot, dst)] -= qty
            if src is not None:
                self.model[(item, lot, src)] += qty
            self.reversed.add(op.moves[0].id)

        @invariant()
        def stock_matches_the_model_and_never_goes_negative(self) -> None:
            with self._tx() as tx:
                for (item, lot, loc), qty in list(self.model.items()):
                    assert qty >= 0
                    assert tx.inventory.stock_level(item, loc, lot) == qty, (item, lot, loc)

        def teardown(self) -> None:
            with self._tx() as tx:  # each donation's trace adds up to what was received
                for donation in sorted(self.received):
                    r = tx.inventory.trace_donation(donation)
                    parts = r.returned + r.distributed + r.scrapped + r.adjusted + r.on_hand
                    assert r.received == parts, r
                    assert r.on_hand >= 0
            assert kit.verify() == []

    run_state_machine_as_test(
        Inventory, settings=settings(max_examples=40, stateful_step_count=25, deadline=None)
    )
