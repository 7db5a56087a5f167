"""ngo-kit-volunteer-points: approved hours earn points by the organisation's rule, atomically."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import ngo_kit_volunteer_points as bridge
import pytest

from ngo_kit import SYSTEM, InsufficientPoints, Kit, PluginError, ValidationFailed, hookimpl
from ngo_kit.context import Context
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory

MODULES = ["registration", "points", "volunteer", "hours_points"]
DAY = dt.date(2026, 5, 1)


def _volunteer(tx: Context, email: str) -> uuid.UUID:
    user = tx.registration.register(email=email, display_name=email.split("@")[0])
    tx.volunteer.save_profile(user_id=user.id)
    tx.volunteer.approve(user.id)
    return uuid.UUID(str(user.id))


def _per_hour(tx: Context, points: int = 10, **extra: Any) -> None:
    tx.points.add_rule(
        name="per-hour", rule_type="volunteer_hours", points=points, per_unit="hours", **extra
    )


@pytest.fixture
def bridged(kit_factory: KitFactory) -> Kit:
    return kit_factory(modules=MODULES, plugins=[bridge])


@pytest.fixture
def rainbow(bridged: Kit) -> OrgRead:
    return bridged.create_organisation("rainbow", "Rainbow Aid")


def test_approved_hours_earn_the_configured_points(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
        entry = tx.volunteer.record_hours(li, "2.5", served_on=DAY)
        assert tx.points.balance(li) == 25
        [award] = tx.hours_points.awards(hours_id=entry.id)
        assert (award.points, award.rule, award.member_id) == (25, "per-hour", li)
    assert bridged.verify() == []


def test_an_approved_claim_earns_points_in_the_approving_transaction(
    bridged: Kit, rainbow: OrgRead
) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx, 12)
        li = _volunteer(tx, "li@example.org")
    with bridged.begin(org=rainbow, actor=li) as tx:
        claim = tx.volunteer.claim_hours(served_on=DAY, hours="3", description="sorting")
        assert tx.points.balance(li) == 0
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        tx.volunteer.approve_claim(claim.id)
        assert tx.points.balance(li) == 36
    with bridged.begin(org=rainbow, actor=li) as tx:  # a member sees their own awards
        assert [a.points for a in tx.hours_points.awards(member_id=li)] == [36]


def test_a_redelivered_event_awards_once(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
        entry = tx.volunteer.record_hours(li, 2, served_on=DAY)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        tx.emit("ngo_kit_hours_approved", hours=entry)  # a retry of the same entry
        assert tx.points.balance(li) == 20
        assert len(tx.hours_points.awards(hours_id=entry.id)) == 1


class FailingAward:
    """Another plugin whose reaction to an award fails."""

    @hookimpl(optionalhook=True)
    def ngo_kit_points_awarded(self, tx: Context, award: Any) -> None:
        raise RuntimeError("points mirror is down")


def test_a_failing_award_rolls_the_approval_back(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=MODULES, plugins=[bridge, FailingAward()])
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
    with kit.begin(org=org, actor=li) as tx:
        claim = tx.volunteer.claim_hours(served_on=DAY, hours="3", description="sorting")
    with pytest.raises(PluginError), kit.begin(org=org, actor=SYSTEM) as tx:
        tx.volunteer.approve_claim(claim.id)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert [c.id for c in tx.volunteer.claims()] == [claim.id]  # still pending
        assert tx.volunteer.hours(li) == []
        assert tx.points.balance(li) == 0
        assert tx.hours_points.awards() == []


def test_reversing_hours_reverses_the_award(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
        entry = tx.volunteer.record_hours(li, 4, served_on=DAY)
        tx.volunteer.record_hours(li, 1, served_on=DAY)
        assert tx.points.balance(li) == 50
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        reversal = tx.volunteer.reverse_hours(entry.id, reason="entered twice")
        assert tx.points.balance(li) == 10
        [undo] = tx.hours_points.awards(hours_id=reversal.id)
        [award] = tx.hours_points.awards(hours_id=entry.id)
        assert (undo.points, undo.reverses_txn_id) == (-40, award.txn_id)
        assert tx.points.standing(li).earned == 10  # lifetime earned falls with the reversal
    assert bridged.verify() == []


def test_reversing_hours_whose_points_were_spent_is_refused(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
        entry = tx.volunteer.record_hours(li, 3, served_on=DAY)
        tx.points.deduct(li, 25, reason="spent at the fair")
    with pytest.raises(InsufficientPoints), bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        tx.volunteer.reverse_hours(entry.id, reason="entered twice")
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        assert [h.hours for h in tx.volunteer.hours(li)] == [Decimal("3")]  # nothing changed
        assert tx.points.balance(li) == 5


def test_an_award_reversed_by_hand_is_not_reversed_twice(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
        entry = tx.volunteer.record_hours(li, 3, served_on=DAY)
        [award] = tx.hours_points.awards(hours_id=entry.id)
        tx.points.reverse(award.txn_id, reason="by hand")
        tx.volunteer.reverse_hours(entry.id, reason="entered twice")
        assert tx.points.balance(li) == 0
    assert bridged.verify() == []


def test_without_a_rule_hours_earn_nothing(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        li = _volunteer(tx, "li@example.org")
        entry = tx.volunteer.record_hours(li, 5, served_on=DAY)
        assert tx.points.balance(li) == 0
        assert tx.hours_points.awards() == []
        tx.volunteer.reverse_hours(entry.id, reason="mistake")  # nothing to take back
        assert tx.points.balance(li) == 0


def test_an_inactive_rule_and_a_cap_are_honoured(bridged: Kit, rainbow: OrgRead) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx, cap_day=30)
        tx.points.add_rule(
            name="bonus", rule_type="volunteer_hours", formula="min(hours * 2, 5)", active=False
        )
        li = _volunteer(tx, "li@example.org")
        tx.volunteer.record_hours(li, 2, served_on=DAY)
        tx.volunteer.record_hours(li, 2, served_on=DAY)
        assert tx.points.balance(li) == 30  # 20, then 10 left under the day's cap
        tx.points.set_rule_active("bonus", True)
        tx.volunteer.record_hours(li, 2, served_on=DAY)
        assert tx.points.balance(li) == 34  # the capped rule is spent; the bonus adds 4


def test_another_organisations_rule_never_applies(bridged: Kit, rainbow: OrgRead) -> None:
    other = bridged.create_organisation("sunshine", "Sunshine Centre")
    with bridged.begin(org=other, actor=SYSTEM) as tx:
        _per_hour(tx, 100)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        li = _volunteer(tx, "li@example.org")
        tx.volunteer.record_hours(li, 3, served_on=DAY)
        assert tx.points.balance(li) == 0
    with bridged.begin(org=other, actor=SYSTEM) as tx:
        assert tx.hours_points.awards() == []
        assert tx.points.leaderboard("all") == []


@pytest.mark.parametrize(
    "modules", [["registration", "volunteer"], ["points"]], ids=["no-points", "no-volunteer"]
)
def test_the_bridge_is_inert_when_a_module_is_disabled(
    kit_factory: KitFactory, modules: list[str]
) -> None:
    kit = kit_factory(modules=modules, plugins=[bridge])
    assert "hours_points" not in kit.modules
    assert kit.pm.get_plugin("ngo_kit_volunteer_points") is None
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        if "volunteer" in kit.modules:
            li = _volunteer(tx, "li@example.org")
            assert tx.volunteer.record_hours(li, 2, served_on=DAY).hours == 2
        else:
            with pytest.raises(ValidationFailed) as caught:
                _per_hour(tx)
            assert caught.value.rule == "unknown_rule_type"


def test_the_bridge_module_needs_both_modules(kit_factory: KitFactory) -> None:
    from ngo_kit import ConfigurationError

    with pytest.raises(ConfigurationError, match="requires module 'volunteer'"):
        kit_factory(modules=["registration", "points", "hours_points"], plugins=[bridge])


def test_attended_shift_hours_earn_points_at_check_out(bridged: Kit, rainbow: OrgRead) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx, 8)
        li = _volunteer(tx, "li@example.org")
        activity = tx.volunteer.create_activity(title="Food sorting")
        shift = tx.volunteer.create_shift(
            activity_id=activity.id,
            starts_at=start,
            ends_at=start + dt.timedelta(hours=3),
            capacity=2,
        )
    with bridged.begin(org=rainbow, actor=li) as tx:
        tx.volunteer.sign_up(shift.id)
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        tx.volunteer.check_in(shift.id, li, at=start)
        entry = tx.volunteer.check_out(shift.id, li, at=start + dt.timedelta(hours=3))
        assert entry.hours == 3
        assert tx.points.balance(li) == 24
        tx.volunteer.complete_shift(shift.id)  # completing adds no second award
        assert tx.points.balance(li) == 24
    assert bridged.verify() == []


def test_a_persons_data_export_lists_what_their_hours_earned(
    bridged: Kit, rainbow: OrgRead
) -> None:
    with bridged.begin(org=rainbow, actor=SYSTEM) as tx:
        _per_hour(tx)
        li = _volunteer(tx, "li@example.org")
        wang = _volunteer(tx, "wang@example.org")
        entry = tx.volunteer.record_hours(li, 2, served_on=DAY)
    with bridged.begin(org=rainbow, actor=li) as tx:
        mine = tx.registration.export_personal_data(li)["organisations"]["rainbow"]
    [award] = mine["hours_points"]["awards"]
    assert (award["hours_id"], award["points"], award["rule"]) == (str(entry.id), 20, "per-hour")
    with bridged.begin(org=rainbow, actor=wang) as tx:
        assert (
            "hours_points"
            not in tx.registration.export_personal_data(wang)["organisations"]["rainbow"]
        )
