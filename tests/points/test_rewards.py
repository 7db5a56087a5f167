"""Rewards: catalogue, redemption, cancellation with refund, limits, the fulfilment hook."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from points_helpers import as_system, ledger_invariants, member

from ngo_kit import (
    SYSTEM,
    AlreadyExists,
    InsufficientPoints,
    InsufficientStock,
    Kit,
    NotFound,
    PermissionDenied,
    hookimpl,
)
from ngo_kit.audit import AuditEntry
from ngo_kit.context import Context
from ngo_kit.modules.points import LimitReached, RewardUnavailable, WrongStatus
from ngo_kit.modules.points.models import PointsRedemption
from ngo_kit.modules.points.schemas import RedemptionRead
from ngo_kit.tenancy import OrgRead


def test_redeeming_takes_points_and_stock_in_one_transaction(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(m, 100)
        mug = tx.points.add_reward(code="mug", name="Mug", name_zh="杯子", price=30, stock=2)
    with pkit.begin(org=porg, actor=m) as tx:  # a member redeems for themselves
        red = tx.points.redeem(reward_id=mug.id, member_id=m, quantity=2)
        assert (red.status, red.points) == ("requested", 60)
        assert tx.points.balance(m) == 40
        assert tx.points.reward(mug.id).stock == 0
        with pytest.raises(InsufficientStock):
            tx.points.redeem(reward_id=mug.id, member_id=m)
    ledger_invariants(pkit)


def test_redeeming_refuses_more_than_the_balance(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(m, 20)
        book = tx.points.add_reward(code="book", name="Book", price=25, stock=5)
    with pytest.raises(InsufficientPoints), pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.redeem(reward_id=book.id, member_id=m)
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.reward(book.id).stock == 5
        assert tx.session.scalar(sa.select(sa.func.count()).select_from(PointsRedemption)) == 0


def test_cancelling_refunds_points_into_the_same_lots_and_returns_stock(
    pkit: Kit, porg: OrgRead
) -> None:
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.configure(expiry_months=12)
        tx.points.award(m, 50)
        before = tx.points.expiring(m)
        mug = tx.points.add_reward(code="mug", name="Mug", price=30, stock=1)
        red = tx.points.redeem(reward_id=mug.id, member_id=m, key="r1")
        assert tx.points.redeem(reward_id=mug.id, member_id=m, key="r1") == red
        cancelled = tx.points.cancel_redemption(red.id, note="changed mind")
        assert cancelled.status == "cancelled" and cancelled.refund_txn_id is not None
        assert tx.points.balance(m) == 50
        assert tx.points.reward(mug.id).stock == 1
        assert [lot.expires_at for lot in tx.points.expiring(m)] == [
            lot.expires_at for lot in before
        ]
        with pytest.raises(WrongStatus):
            tx.points.cancel_redemption(red.id)
        with pytest.raises(WrongStatus):
            tx.points.fulfil(red.id)
    ledger_invariants(pkit)


def test_fulfilling_needs_rewards_fulfil(pkit: Kit, porg: OrgRead) -> None:
    m, staff = member(), member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.tenancy.add_member(m, "member")
        tx.tenancy.add_member(staff, "staff")
        tx.points.award(m, 10)
        pen = tx.points.add_reward(code="pen", name="Pen", price=10)
    with pkit.begin(org=porg, actor=m) as tx:
        red = tx.points.redeem(reward_id=pen.id, member_id=m)
        with pytest.raises(PermissionDenied):
            tx.points.fulfil(red.id)
        with pytest.raises(PermissionDenied):
            tx.points.redeem(reward_id=pen.id, member_id=staff)
        assert [r.id for r in tx.points.redemptions(member_id=m)] == [red.id]
    with pkit.begin(org=porg, actor=staff) as tx:
        done = tx.points.fulfil(red.id, note="handed over")
        assert done.status == "fulfilled"
        assert tx.points.redemptions(status="fulfilled")[0].id == red.id


def test_per_member_limit_and_window_are_enforced(pkit: Kit, porg: OrgRead) -> None:
    m = member()
    now = dt.datetime.now(dt.UTC)
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(m, 1000)
        shirt = tx.points.add_reward(code="shirt", name="Shirt", price=10, per_member_limit=2)
        later = tx.points.add_reward(
            code="later", name="Later", price=10, starts_at=now + dt.timedelta(days=1)
        )
        tx.points.redeem(reward_id=shirt.id, member_id=m, quantity=2)
        with pytest.raises(LimitReached):
            tx.points.redeem(reward_id=shirt.id, member_id=m)
        with pytest.raises(RewardUnavailable):
            tx.points.redeem(reward_id=later.id, member_id=m)
        with pytest.raises(AlreadyExists):
            tx.points.add_reward(code="shirt", name="Again", price=1)
        assert [r.code for r in tx.points.rewards(available_only=True)] == ["shirt"]


def test_reward_stock_can_be_added_and_removed_but_not_below_zero(sys_tx: Context) -> None:
    cup = sys_tx.points.add_reward(code="cup", name="Cup", price=5, stock=3)
    assert sys_tx.points.update_reward(cup.id, add_stock=2, price=6).stock == 5
    with pytest.raises(InsufficientStock):
        sys_tx.points.update_reward(cup.id, add_stock=-6)


class Fulfiller:
    """A plugin that fulfils redemptions of reward ``auto`` at once (as inventory would)."""

    ngo_kit_plugin_name = "test.fulfiller"

    def __init__(self) -> None:
        self.redeemed: list[RedemptionRead] = []

    @hookimpl
    def ngo_kit_fulfil_redemption(self, tx: Context, redemption: RedemptionRead) -> str | None:
        code = tx.points.reward(redemption.reward_id).code
        return "issued from stock" if code == "auto" else None

    @hookimpl
    def ngo_kit_reward_redeemed(self, tx: Context, redemption: RedemptionRead) -> None:
        self.redeemed.append(redemption)


def test_a_plugin_can_fulfil_a_redemption_at_once(kit_factory: object) -> None:
    plugin = Fulfiller()
    kit: Kit = kit_factory(modules=["points"], plugins=[plugin])  # type: ignore[operator]
    org = kit.create_organisation("auto-org", "Auto")
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(m, 20)
        auto = tx.points.add_reward(code="auto", name="Auto", price=5)
        manual = tx.points.add_reward(code="manual", name="Manual", price=5)
        first = tx.points.redeem(reward_id=auto.id, member_id=m)
        second = tx.points.redeem(reward_id=manual.id, member_id=m)
    assert (first.status, first.note) == ("fulfilled", "issued from stock")
    assert second.status == "requested"
    assert [r.status for r in plugin.redeemed] == ["fulfilled", "requested"]


class HandOver:
    """A plugin that hands over rewards when staff fulfil them, and refuses reward ``broken``."""

    ngo_kit_plugin_name = "test.hand_over"

    @hookimpl
    def ngo_kit_hand_over_redemption(self, tx: Context, redemption: RedemptionRead) -> str | None:
        assert redemption.status == "fulfilled"
        code = tx.points.reward(redemption.reward_id).code
        if code == "broken":
            raise WrongStatus(redemption=redemption.id, status="broken", needed="requested")
        return "given at the desk" if code == "desk" else None


def test_fulfilling_lets_a_plugin_hand_the_reward_over_or_roll_it_back(
    kit_factory: object,
) -> None:
    kit: Kit = kit_factory(modules=["points"], plugins=[HandOver()])  # type: ignore[operator]
    org = kit.create_organisation("desk-org", "Desk")
    m = member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(m, 30)
        rewards = {
            code: tx.points.add_reward(code=code, name=code.title(), price=5)
            for code in ("desk", "plain", "broken")
        }
        asked = {code: tx.points.redeem(reward_id=r.id, member_id=m) for code, r in rewards.items()}
    with kit.begin(org=org, actor=SYSTEM) as tx:
        desk = tx.points.fulfil(asked["desk"].id, note="Saturday")
        plain = tx.points.fulfil(asked["plain"].id)
    assert (desk.status, desk.note) == ("fulfilled", "Saturday; given at the desk")
    assert (plain.status, plain.note) == ("fulfilled", "")
    with pytest.raises(WrongStatus), kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.fulfil(asked["broken"].id)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.points.redemption(asked["broken"].id).status == "requested"  # rolled back
        assert tx.points.redemption(asked["desk"].id).note == "Saturday; given at the desk"
        audited: dict[str, dict[str, str]] = dict(
            tx.connection.execute(
                sa.select(AuditEntry.target_id, AuditEntry.data).where(
                    AuditEntry.org_id == org.id, AuditEntry.action == "reward.fulfilled"
                )
            ).all()
        )
    assert audited == {  # what the plugin handed over is in the audit log too
        str(desk.id): {"note": "Saturday; given at the desk"},
        str(plain.id): {"note": ""},
    }


def test_rewards_and_redemptions_of_another_organisation_are_not_found(
    pkit: Kit, porg: OrgRead
) -> None:
    other = pkit.create_organisation("other-rewards", "Other")
    m = member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(m, 20)
        mug = tx.points.add_reward(code="mug", name="Mug", price=5)
        red = tx.points.redeem(reward_id=mug.id, member_id=m)
    with pkit.begin(org=other, actor=SYSTEM) as tx:
        tx.points.award(m, 20)
        calls: list[Callable[[], object]] = [
            lambda: tx.points.reward(mug.id),
            lambda: tx.points.redeem(reward_id=mug.id, member_id=m),
            lambda: tx.points.update_reward(mug.id, price=1),
            lambda: tx.points.redemption(red.id),
            lambda: tx.points.fulfil(red.id),
            lambda: tx.points.cancel_redemption(red.id),
        ]
        for call in calls:
            with pytest.raises(NotFound):
                call()
        assert tx.points.rewards() == [] and tx.points.redemptions() == []
    assert as_system(pkit, porg, lambda tx: tx.points.redemption(red.id)).status == "requested"


def test_a_member_may_cancel_only_their_own_redemption(pkit: Kit, porg: OrgRead) -> None:
    a, b = member(), member()
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.award(a, 20)
        mug = tx.points.add_reward(code="mug", name="Mug", price=5)
        red = tx.points.redeem(reward_id=mug.id, member_id=a)
    with pytest.raises(PermissionDenied), pkit.begin(org=porg, actor=b) as tx:
        tx.points.cancel_redemption(red.id)
    with pkit.begin(org=porg, actor=a) as tx:
        assert tx.points.cancel_redemption(red.id).status == "cancelled"
    _ = uuid
