"""Real threads, each with its own transaction: no overselling, no overspending, no drift."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from points_helpers import as_system, ledger_invariants, member

from ngo_kit import SYSTEM, InsufficientPoints, InsufficientStock, Kit
from ngo_kit.modules.points.models import PointsTxn
from ngo_kit.testing import run_together

THREADS = 16
PRICE = 10


@pytest.mark.parametrize(
    ("stock", "points_of"), [(100, lambda i: PRICE * (i % 9) + 5), (30, lambda i: PRICE * 5)]
)
def test_sixteen_threads_redeeming_never_oversell_nor_overspend(
    kit_factory: Callable[..., Kit], stock: int, points_of: Callable[[int], int]
) -> None:
    kit = kit_factory(modules=["points"], pool_size=THREADS)
    org = kit.create_organisation("rush", "Rush")
    members = [member() for _ in range(THREADS)]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award_many(awards={m: points_of(i) for i, m in enumerate(members)})
        reward = tx.points.add_reward(code="ticket", name="Ticket", price=PRICE, stock=stock)

    def redeem_until_refused(i: int) -> tuple[int, str]:
        won = 0
        while True:
            try:
                with kit.begin(org=org, actor=members[i]) as tx:
                    tx.points.redeem(reward_id=reward.id, member_id=members[i])
                won += 1
            except InsufficientPoints:
                return won, "points"
            except InsufficientStock:
                return won, "stock"

    results = run_together(THREADS, redeem_until_refused)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    affordable = [points_of(i) // PRICE for i in range(THREADS)]
    expected = min(stock, sum(affordable))
    assert sum(won for won, _ in results) == expected
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.reward(reward.id).stock == stock - expected
        for i, m in enumerate(members):
            won = results[i][0]
            assert won <= affordable[i]
            assert tx.points.balance(m) == points_of(i) - won * PRICE
    ledger_invariants(kit)


def test_racing_calls_with_one_key_award_once(kit_factory: Callable[..., Kit]) -> None:
    kit = kit_factory(modules=["points"], pool_size=8)
    org = kit.create_organisation("race", "Race")
    m = member()
    as_system(kit, org, lambda tx: tx.points.award(member(), 1))  # system accounts exist

    def award(_: int) -> uuid.UUID:
        with kit.begin(org=org, actor=SYSTEM) as tx:
            got: uuid.UUID = tx.points.award(m, 25, key="once").id
            return got

    results = run_together(8, award)
    assert all(isinstance(r, uuid.UUID) for r in results), results
    assert len(set(results)) == 1
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.balance(m) == 25
        assert (
            tx.session.scalar(
                sa.select(sa.func.count()).select_from(PointsTxn).where(PointsTxn.key == "once")
            )
            == 1
        )
    ledger_invariants(kit)


def test_racing_redemptions_with_one_key_redeem_once_per_member(
    kit_factory: Callable[..., Kit],
) -> None:
    """Eight writers per member send the same key at once: one redemption each, and no member
    is handed another's."""
    kit = kit_factory(modules=["points"], pool_size=8)
    org = kit.create_organisation("race-keys", "Race keys")
    ann, bo = member(), member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(ann, "member")
        tx.tenancy.add_member(bo, "member")
        tx.points.award_many(awards={ann: 100, bo: 100})
        reward = tx.points.add_reward(code="mug", name="Mug", price=30, stock=50)

    def redeem(i: int) -> tuple[uuid.UUID, uuid.UUID]:
        who = ann if i % 2 else bo
        with kit.begin(org=org, actor=who) as tx:
            got = tx.points.redeem(reward_id=reward.id, member_id=who, key="basket")
            return who, got.id

    results = run_together(8, redeem)
    assert all(isinstance(r, tuple) for r in results), results
    by_member = {who: {rid for w, rid in results if w == who} for who in (ann, bo)}
    assert all(len(ids) == 1 for ids in by_member.values()), by_member
    assert by_member[ann] != by_member[bo]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert (tx.points.balance(ann), tx.points.balance(bo)) == (70, 70)
        assert tx.points.reward(reward.id).stock == 48
    ledger_invariants(kit)


def test_crossing_transfers_and_deductions_neither_deadlock_nor_drift(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = kit_factory(modules=["points"], pool_size=8)
    org = kit.create_organisation("cross", "Cross")
    a, b = member(), member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.configure(transfers_allowed=True)
        tx.points.award_many(awards={a: 200, b: 200})

    def churn(i: int) -> Counter[str]:
        outcome: Counter[str] = Counter()
        for n in range(10):
            src, dst = (a, b) if (i + n) % 2 else (b, a)
            try:
                with kit.begin(org=org, actor=SYSTEM) as tx:
                    if n % 3 == 0:
                        tx.points.deduct(src, 7)
                    else:
                        tx.points.transfer(from_member=src, to_member=dst, points=13)
                outcome["ok"] += 1
            except InsufficientPoints:
                outcome["refused"] += 1
        return outcome

    results = run_together(8, churn)
    assert not [r for r in results if isinstance(r, BaseException)], results
    ledger_invariants(kit)


def test_racing_batches_with_one_key_award_each_member_once(
    kit_factory: Callable[..., Kit],
) -> None:
    kit = kit_factory(modules=["points"], pool_size=4)
    org = kit.create_organisation("batch-race", "Batch race")
    members = [member() for _ in range(200)]

    def batch(i: int) -> int:
        with kit.begin(org=org, actor=SYSTEM) as tx:
            awards = {m: 3 for m in members[i * 50 :]}  # overlapping halves
            done: int = tx.points.award_many(awards=awards, key="monthly")
            return done

    results = run_together(4, batch)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(results) == len(members)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert {tx.points.balance(m) for m in members} == {3}
    ledger_invariants(kit)
