"""Hypothesis: any sequence of ledger operations keeps every invariant.

Balanced entries, no negative member balance, balance == sum(entries) == open lots, the hash
chain intact (all via ``kit.verify()``), reward stock never below zero, and keys idempotent:
a repeated key returns the first operation and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from points_helpers import ledger_invariants

from ngo_kit import SYSTEM, Conflict, Kit
from ngo_kit.context import Context
from ngo_kit.idempotency import KeyReused
from ngo_kit.modules.points import NotReversible

MEMBERS = [uuid.UUID(int=i) for i in range(1, 5)]
KEYS = st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"]))
member_ids = st.sampled_from(MEMBERS)
amounts = st.integers(min_value=1, max_value=60)


def test_any_sequence_of_operations_keeps_the_ledger_whole(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = kit_factory(modules=["points"])
    counter = iter(range(10**6))

    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.org = kit.create_organisation(f"h{next(counter)}", "Hypothesis")
            self.balances = dict.fromkeys(MEMBERS, 0)
            self.keys: dict[tuple[str, str], uuid.UUID] = {}
            self.txns: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID | None, int]] = []
            self.redemptions: list[uuid.UUID] = []
            self.reversed: set[uuid.UUID] = set()
            self.stock = 5

        def run(self, fn: Callable[[Context], Any]) -> Any:
            with kit.begin(org=self.org, actor=SYSTEM) as tx:
                return fn(tx)

        def read_balances(self) -> dict[uuid.UUID, int]:
            found: dict[uuid.UUID, int] = self.run(
                lambda tx: {m: tx.points.balance(m) for m in MEMBERS}
            )
            return found

        def keyed(self, kind: str, key: str | None, call: Callable[[], Any]) -> Any:
            """Run a keyed call and check the key contract; returns a new result or None.

            A key is scoped to the actor and the operation: the same key for another kind of
            operation is a new operation; for the same kind it returns the first result, or
            ``KeyReused`` (a ``Conflict``) when the parameters differ. Nothing is read here:
            the model is exact, and the invariant after every step compares it with the
            database, so "wrote nothing" is checked there.
            """
            if key is not None and (kind, key) in self.keys:
                first_id = self.keys[(kind, key)]
                try:
                    again = call()
                except (KeyReused, NotReversible):
                    return None  # the same key for another request (or a reversed operation)
                assert again.id == first_id
                return None
            try:
                result = call()
            except Conflict:
                return None
            if key is not None:
                self.keys[(kind, key)] = result.id
            return result

        @initialize()
        def configure(self) -> None:
            self.run(lambda tx: tx.points.configure(expiry_months=1, transfers_allowed=True))
            self.reward = self.run(
                lambda tx: tx.points.add_reward(code="gift", name="Gift", price=15, stock=5)
            )

        @rule(m=member_ids, n=amounts, key=KEYS)
        def award(self, m: uuid.UUID, n: int, key: str | None) -> None:
            done = self.keyed(
                "award", key, lambda: self.run(lambda tx: tx.points.award(m, n, key=key))
            )
            if done is not None:
                self.balances[m] += n
                self.txns.append((done.id, m, None, n))

        @rule(m=member_ids, n=amounts, key=KEYS)
        def deduct(self, m: uuid.UUID, n: int, key: str | None) -> None:
            done = self.keyed(
                "deduct", key, lambda: self.run(lambda tx: tx.points.deduct(m, n, key=key))
            )
            if done is not None:
                assert self.balances[m] >= n
                self.balances[m] -= n
                self.txns.append((done.id, m, None, -n))

        @rule(a=member_ids, b=member_ids, n=amounts, key=KEYS)
        def transfer(self, a: uuid.UUID, b: uuid.UUID, n: int, key: str | None) -> None:
            if a == b:
                return
            done = self.keyed(
                "transfer",
                key,
                lambda: self.run(
                    lambda tx: tx.points.transfer(from_member=a, to_member=b, points=n, key=key)
                ),
            )
            if done is not None:
                self.balances[a] -= n
                self.balances[b] += n
                self.txns.append((done.id, a, b, -n))

        @rule(m=member_ids)
        def redeem(self, m: uuid.UUID) -> None:
            try:
                red = self.run(lambda tx: tx.points.redeem(reward_id=self.reward.id, member_id=m))
            except Conflict:
                return
            self.balances[m] -= 15
            self.stock -= 1
            self.redemptions.append(red.id)

        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            if not self.redemptions:
                return
            red_id = data.draw(st.sampled_from(self.redemptions))
            try:
                red = self.run(lambda tx: tx.points.cancel_redemption(red_id))
            except Conflict:
                return
            self.balances[red.member_id] += red.points
            self.stock += red.quantity

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            if not self.txns:
                return
            txn_id, m, other, change = data.draw(st.sampled_from(self.txns))
            try:
                self.run(lambda tx: tx.points.reverse(txn_id))
            except (NotReversible, Conflict):
                return
            if txn_id in self.reversed:
                return  # the same reversal again: its key returns the first one
            self.reversed.add(txn_id)
            self.balances[m] -= change
            if other is not None:
                self.balances[other] += change

        @rule(days=st.integers(min_value=0, max_value=70))
        def expire(self, days: int) -> None:
            when = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
            before = sum(self.balances.values())
            expired = self.run(lambda tx: tx.points.expire(when))
            self.balances = self.read_balances()
            assert sum(self.balances.values()) == before - expired
            assert self.run(lambda tx: tx.points.expire(when)) == 0

        @invariant()
        def ledger_is_whole(self) -> None:
            with kit.begin(org=self.org, actor=SYSTEM) as tx:
                assert {m: tx.points.balance(m) for m in MEMBERS} == self.balances
                assert tx.points.reward(self.reward.id).stock == self.stock >= 0
            assert all(b >= 0 for b in self.balances.values())

        def teardown(self) -> None:
            ledger_invariants(kit)

    Ledger.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
    Ledger.TestCase().runTest()
