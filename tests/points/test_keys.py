"""Idempotency keys: scoped to who uses them and the operation, checked before anything else."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from points_helpers import member

from ngo_kit import SYSTEM, Kit
from ngo_kit.idempotency import KeyReused
from ngo_kit.modules.points import LimitReached
from ngo_kit.tenancy import OrgRead


@pytest.fixture
def people(pkit: Kit, porg: OrgRead) -> dict[str, uuid.UUID]:
    ids = {"ann": member(), "bo": member(), "staff": member(), "staff2": member()}
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.tenancy.add_member(ids["ann"], "member")
        tx.tenancy.add_member(ids["bo"], "member")
        tx.tenancy.add_member(ids["staff"], "staff")
        tx.tenancy.add_member(ids["staff2"], "staff")
        tx.points.configure(transfers_allowed=True)
        tx.points.award(ids["ann"], 100)
        tx.points.award(ids["bo"], 100)
    return ids


def test_a_member_sending_anothers_key_gets_their_own_redemption(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    ann, bo = people["ann"], people["bo"]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        reward = tx.points.add_reward(code="mug", name="Mug", price=30, stock=5)
    with pkit.begin(org=porg, actor=ann) as tx:
        first = tx.points.redeem(reward_id=reward.id, member_id=ann, key="order-1")
    with pkit.begin(org=porg, actor=bo) as tx:
        mine = tx.points.redeem(reward_id=reward.id, member_id=bo, key="order-1")
        assert mine.id != first.id and mine.member_id == bo
        assert tx.points.balance(bo) == 70
    with pkit.begin(org=porg, actor=ann) as tx:  # Ann's retry still gets Ann's
        assert tx.points.redeem(reward_id=reward.id, member_id=ann, key="order-1").id == first.id
        assert tx.points.balance(ann) == 70


def test_staff_using_anothers_key_award_their_own(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        first = tx.points.award(people["ann"], 5, key="pr:1")
    with pkit.begin(org=porg, actor=people["staff2"]) as tx:
        other = tx.points.award(people["bo"], 7, key="pr:1")
        assert other.id != first.id and other.member_id == people["bo"]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.balance(people["bo"]) == 107


def test_the_same_key_with_other_parameters_is_a_conflict(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    ann = people["ann"]
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        tx.points.award(ann, 5, reason="stall", key="k")
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.points.award(ann, 6, reason="stall", key="k"),
            lambda: tx.points.award(people["bo"], 5, reason="stall", key="k"),
            lambda: tx.points.award(ann, 5, reason="other", key="k"),
        ]
        for call in calls:
            with pytest.raises(KeyReused) as refused:
                call()
            assert refused.value.code == "idempotency_key_reused"
            assert refused.value.to_dict()["key"] == "k"
            assert "键" in refused.value.message_in("zh_CN")
        assert tx.points.balance(ann) == 105
    with pkit.begin(org=porg, actor=ann) as tx:  # other operations keep their own keys
        tx.points.transfer(from_member=ann, to_member=people["bo"], points=1, key="k")
        with pytest.raises(KeyReused):
            tx.points.transfer(from_member=ann, to_member=people["bo"], points=2, key="k")


def test_a_repeat_after_the_rule_cap_is_reached_returns_the_first_award(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    ann = people["ann"]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.add_rule(name="kudos", rule_type="manual", points=0, cap_day=10)
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        first = tx.points.award(ann, 10, rule="kudos", key="pr:1")
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        again = tx.points.award(ann, 10, rule="kudos", key="pr:1")
        assert again.id == first.id and again.rule == "kudos"
        with pytest.raises(LimitReached):
            tx.points.award(ann, 1, rule="kudos", key="pr:2")
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.set_rule_active("kudos", False)
    with pkit.begin(org=porg, actor=people["staff"]) as tx:  # whatever changed since
        assert tx.points.award(ann, 10, rule="kudos", key="pr:1").id == first.id
        assert tx.points.balance(ann) == 110


def test_a_repeat_after_the_balance_is_spent_returns_the_first_result(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    ann, bo = people["ann"], people["bo"]
    with pkit.begin(org=porg, actor=ann) as tx:
        first = tx.points.transfer(from_member=ann, to_member=bo, points=60, key="gift")
        tx.points.transfer(from_member=ann, to_member=bo, points=40)
    with pkit.begin(org=porg, actor=ann) as tx:
        again = tx.points.transfer(from_member=ann, to_member=bo, points=60, key="gift")
        assert again.id == first.id
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        first_deduct = tx.points.deduct(bo, 200, key="fine")
        assert tx.points.deduct(bo, 200, key="fine").id == first_deduct.id
        assert tx.points.balance(bo) == 0


def test_a_daily_check_in_counts_once_whoever_records_it(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    ann = people["ann"]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.add_rule(name="daily", rule_type="daily_check_in", points=3)
    with pkit.begin(org=porg, actor=ann) as tx:
        first = tx.points.check_in(ann)
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        assert [a.id for a in tx.points.check_in(ann)] == [a.id for a in first]
        assert tx.points.balance(ann) == 103
