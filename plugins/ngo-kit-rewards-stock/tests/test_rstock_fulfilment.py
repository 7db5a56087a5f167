"""ngo-kit-rewards-stock: redeeming a reward backed by stock issues exactly the mapped goods."""

from __future__ import annotations

import uuid
from decimal import Decimal

import ngo_kit_rewards_stock as bridge
import pytest
import sqlalchemy as sa

from ngo_kit import (
    SYSTEM,
    AlreadyExists,
    InsufficientStock,
    Kit,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from ngo_kit.audit import AuditEntry
from ngo_kit.context import Context
from ngo_kit.modules.points import WrongStatus
from ngo_kit.modules.points.schemas import RewardRead
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, run_together

MODULES = ["points", "inventory", "rewards_stock"]
LI = uuid.UUID("0193a3f0-0000-7000-8000-00000000000a")


@pytest.fixture
def bridged(kit_factory: KitFactory) -> Kit:
    return kit_factory(modules=MODULES, plugins=[bridge])


@pytest.fixture
def rainbow(bridged: Kit) -> OrgRead:
    return bridged.create_organisation("rainbow", "Rainbow Aid")


def _store(tx: Context, on_hand: int = 10) -> None:
    tx.inventory.create_item(code="scarf", name="Knitted scarf", name_zh="围巾")
    tx.inventory.create_location(code="store", name="Gift store")
    tx.inventory.receive(
        item="scarf", quantity=on_hand, to="store", donor="Wool Circle", donation="D-7"
    )


def _reward(tx: Context, fulfil: str = "on_redemption", per_unit: str = "2") -> RewardRead:
    reward: RewardRead = tx.points.add_reward(code="scarves", name="Two scarves", price=40)
    tx.rewards_stock.link(
        reward_id=reward.id, item="scarf", location="store", quantity=per_unit, fulfil=fulfil
    )
    return reward


def test_redeeming_issues_exactly_the_mapped_quantity_and_the_trace_shows_it(
    bridged: Kit, rainbow: OrgRead
) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        reward = _reward(tx)
        tx.points.award(LI, 100, reason="helped")
    with bridged.begin(org=rainbow, actor=LI) as tx:  # the member redeems for themselves
        redemption = tx.points.redeem(reward_id=reward.id, member_id=LI, quantity=2)
        assert redemption.status == "fulfilled"
        assert "stock issued: 4" in redemption.note
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.inventory.on_hand("scarf") == Decimal(6)
        assert tx.points.balance(LI) == 20
        trace = tx.inventory.trace_donation("D-7")
        assert (trace.received, trace.distributed, trace.on_hand) == (10, 4, 6)
        [line] = trace.lines
        assert (line.kind, line.quantity, line.recipient) == ("issue", 4, str(LI))
        assert line.recipient_kind == "beneficiary"
    assert bridged.verify() == []


def test_a_retried_redemption_issues_once(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        reward = _reward(tx)
        tx.points.award(LI, 100, reason="helped")
    for _ in range(2):
        with bridged.begin(org=rainbow, actor=LI) as tx:
            tx.points.redeem(reward_id=reward.id, member_id=LI, key="li-scarves-1")
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.inventory.on_hand("scarf") == Decimal(8)
        assert tx.points.balance(LI) == 60


def test_insufficient_stock_refuses_the_redemption_and_changes_nothing(
    bridged: Kit, rainbow: OrgRead
) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx, on_hand=3)
        reward = _reward(tx)
        tx.points.award(LI, 100, reason="helped")
    with pytest.raises(InsufficientStock), bridged.begin(org=rainbow, actor=LI) as tx:
        tx.points.redeem(reward_id=reward.id, member_id=LI, quantity=2)  # needs 4, 3 on hand
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.inventory.on_hand("scarf") == Decimal(3)
        assert tx.points.balance(LI) == 100
        assert tx.points.redemptions() == []
        assert tx.inventory.history(kind="issue") == []
    assert bridged.verify() == []


def test_staff_hand_over_issues_the_stock_and_fulfils(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        reward = _reward(tx, fulfil="by_staff", per_unit="1")
        tx.points.award(LI, 100, reason="helped")
    with bridged.begin(org=rainbow, actor=LI) as tx:
        redemption = tx.points.redeem(reward_id=reward.id, member_id=LI)
        assert redemption.status == "requested"
        with pytest.raises(PermissionDenied):  # members cannot hand goods to themselves
            tx.rewards_stock.fulfil(redemption.id)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.inventory.on_hand("scarf") == Decimal(10)
        done = tx.rewards_stock.fulfil(redemption.id)
        assert done.status == "fulfilled"
        assert tx.inventory.on_hand("scarf") == Decimal(9)
        with pytest.raises(WrongStatus):
            tx.rewards_stock.fulfil(redemption.id)
        assert tx.inventory.on_hand("scarf") == Decimal(9)


def test_fulfilling_through_points_issues_the_stock_too(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        reward = _reward(tx, fulfil="by_staff", per_unit="2")
        tx.points.award(LI, 100, reason="helped")
        redemption = tx.points.redeem(reward_id=reward.id, member_id=LI)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        done = tx.points.fulfil(redemption.id, note="handed over at the door")
        assert done.status == "fulfilled"
        assert done.note.startswith("handed over at the door; stock issued: 2")
        assert tx.inventory.on_hand("scarf") == Decimal(8)
        [issue] = tx.inventory.history(kind="issue")
        assert issue.recipient_ref == str(LI)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.points.redemption(redemption.id).note == done.note
        audited = tx.connection.scalar(
            sa.select(AuditEntry.data).where(
                AuditEntry.org_id == rainbow.id, AuditEntry.action == "reward.fulfilled"
            )
        )
    assert audited == {"note": done.note}  # the stock issued is in the audit log too
    assert bridged.verify() == []


def test_staff_hand_over_without_stock_changes_nothing(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx, on_hand=1)
        reward = _reward(tx, fulfil="by_staff")
        tx.points.award(LI, 100, reason="helped")
        redemption = tx.points.redeem(reward_id=reward.id, member_id=LI)
    with pytest.raises(InsufficientStock), bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        tx.rewards_stock.fulfil(redemption.id)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.points.redemption(redemption.id).status == "requested"
        assert tx.inventory.on_hand("scarf") == Decimal(1)


def test_cancelling_before_fulfilment_touches_no_stock(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        reward = _reward(tx, fulfil="by_staff")
        tx.points.award(LI, 100, reason="helped")
    with bridged.begin(org=rainbow, actor=LI) as tx:
        redemption = tx.points.redeem(reward_id=reward.id, member_id=LI)
        tx.points.cancel_redemption(redemption.id)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.points.redemption(redemption.id).status == "cancelled"
        assert tx.points.balance(LI) == 100
        assert tx.inventory.on_hand("scarf") == Decimal(10)
        assert [m.kind for m in tx.inventory.history()] == ["receive"]


def test_rewards_without_a_link_are_left_to_staff(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        mug = tx.points.add_reward(code="mug", name="Mug", price=10)
        tx.points.award(LI, 100, reason="helped")
        assert tx.points.redeem(reward_id=mug.id, member_id=LI).status == "requested"
        assert tx.rewards_stock.link_for(mug.id) is None
        assert tx.inventory.on_hand("scarf") == Decimal(10)


def test_linking_checks_the_reward_item_and_location(bridged: Kit, rainbow: OrgRead) -> None:
    other = bridged.create_organisation("sunshine", "Sunshine Centre")
    with bridged.begin(org=other, actor=SYSTEM) as tx:
        foreign = tx.points.add_reward(code="pen", name="Pen", price=5)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        reward = _reward(tx)
        with pytest.raises(AlreadyExists):
            tx.rewards_stock.link(reward_id=reward.id, item="scarf", location="store")
        with pytest.raises(NotFound):  # another organisation's reward
            tx.rewards_stock.link(reward_id=foreign.id, item="scarf", location="store")
        mug = tx.points.add_reward(code="mug", name="Mug", price=10)
        with pytest.raises(NotFound):
            tx.rewards_stock.link(reward_id=mug.id, item="teapot", location="store")
        with pytest.raises(NotFound):
            tx.rewards_stock.link(reward_id=mug.id, item="scarf", location="attic")
        with pytest.raises(ValidationFailed) as caught:
            tx.rewards_stock.link(reward_id=mug.id, item="scarf", location="store", quantity=0)
        assert caught.value.field == "quantity"
        tx.rewards_stock.unlink(reward.id)
        assert tx.rewards_stock.links() == []
    with bridged.begin(org=other, actor=SYSTEM) as tx:
        assert tx.rewards_stock.links() == []


def test_only_reward_managers_link_rewards(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx)
        mug = tx.points.add_reward(code="mug", name="Mug", price=10)
    with (
        pytest.raises(PermissionDenied),
        bridged.begin(org=rainbow, actor=LI) as tx,
    ):
        tx.rewards_stock.link(reward_id=mug.id, item="scarf", location="store")


@pytest.mark.parametrize("modules", [["points"], ["inventory"]])
def test_the_bridge_is_inert_when_a_module_is_disabled(
    kit_factory: KitFactory, modules: list[str]
) -> None:
    kit = kit_factory(modules=modules, plugins=[bridge])
    assert "rewards_stock" not in kit.modules
    assert kit.pm.get_plugin("ngo_kit_rewards_stock") is None
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        if "points" in kit.modules:
            mug = tx.points.add_reward(code="mug", name="Mug", price=10)
            tx.points.award(LI, 10, reason="helped")
            assert tx.points.redeem(reward_id=mug.id, member_id=LI).status == "requested"
        else:
            _store(tx)
            assert tx.inventory.on_hand("scarf") == Decimal(10)


def test_a_missing_link_is_named_in_english_and_chinese(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        mug = tx.points.add_reward(code="mug", name="Mug", price=10)
        with pytest.raises(NotFound) as caught:
            tx.rewards_stock.unlink(mug.id)
    assert "Reward stock link" in caught.value.message_in("en")
    assert "奖品与物资的关联" in caught.value.message_in("zh_CN")


def test_members_racing_for_the_last_goods_get_exactly_what_is_on_hand(
    bridged: Kit, rainbow: OrgRead
) -> None:
    members = [uuid.UUID(int=n + 1) for n in range(6)]
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx, on_hand=3)
        reward = _reward(tx, per_unit="1")
        tx.points.award_many(awards={m: 100 for m in members}, reason="helped")

    def redeem(i: int) -> str:
        member = members[i]
        try:
            with bridged.begin(org=rainbow, actor=member) as tx:
                return str(tx.points.redeem(reward_id=reward.id, member_id=member).status)
        except InsufficientStock:
            return "refused"

    assert sorted(run_together(len(members), redeem)) == ["fulfilled"] * 3 + ["refused"] * 3
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert tx.inventory.on_hand("scarf") == 0
        assert sum(tx.points.balance(m) for m in members) == 600 - 3 * 40
        assert tx.inventory.trace_donation("D-7").distributed == 3
    assert bridged.verify() == []


def test_anyone_may_see_how_many_stock_backed_rewards_are_left(
    bridged: Kit, rainbow: OrgRead
) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _store(tx, on_hand=7)
        reward = _reward(tx, per_unit="2")
        mug = tx.points.add_reward(code="mug", name="Mug", price=10)
        tx.inventory.create_location(code="depot", name="Depot")  # other locations don't count
        tx.inventory.receive(item="scarf", quantity=50, to="depot", donor="Wool Circle")
        # nor do the store's shelves: a redemption issues from the store itself
        tx.inventory.create_location(code="shelf", name="Shelf", parent="store")
        tx.inventory.receive(item="scarf", quantity=50, to="shelf", donor="Wool Circle")
    with bridged.begin(org=rainbow, actor=LI) as tx:  # a member holding no inventory.view
        assert tx.rewards_stock.available(reward.id) == 3  # 7 scarves, 2 a reward
        assert tx.rewards_stock.available(mug.id) is None  # not backed by stock
