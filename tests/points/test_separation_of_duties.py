"""Separation of duties: staff do not award themselves; manual awards have a ceiling."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from points_helpers import member

from ngo_kit import SYSTEM, Kit, ValidationFailed
from ngo_kit.errors import SelfActionRefused
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory


@pytest.fixture
def staff(pkit: Kit, porg: OrgRead) -> dict[str, uuid.UUID]:
    ids = {"staff": member(), "member": member()}
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.tenancy.add_member(ids["staff"], "staff")
        tx.tenancy.add_member(ids["member"], "member")
        tx.points.add_badge(code="helper", name="Helper", criteria="manual")
    return ids


def test_staff_cannot_award_themselves_points(
    pkit: Kit, porg: OrgRead, staff: dict[str, uuid.UUID]
) -> None:
    me = staff["staff"]
    with pkit.begin(org=porg, actor=me) as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.points.award(me, 10, reason="mine"),
            lambda: tx.points.award_many(awards={staff["member"]: 5, me: 5}),
            lambda: tx.points.grant_badge("helper", me),
        ]
        for call in calls:
            with pytest.raises(SelfActionRefused) as refused:
                call()
            assert refused.value.permission == "points.award"
            assert refused.value.to_dict()["code"] == "self_action_refused"
        assert tx.points.balance(me) == 0
        assert tx.points.balance(staff["member"]) == 0
        tx.points.award(staff["member"], 10)  # others, as before
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        assert tx.points.balance(me) == 0
        assert tx.points.member_badges(me) == []


def test_an_organisation_may_let_staff_award_themselves(
    pkit: Kit, porg: OrgRead, staff: dict[str, uuid.UUID]
) -> None:
    me = staff["staff"]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.tenancy.allow_self_action("points.award")
    with pkit.begin(org=porg, actor=me) as tx:
        assert tx.points.award(me, 10).balance_after == 10


def test_a_manual_award_above_the_ceiling_is_refused(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["points"], points_manual_award_max=500)
    org = kit.create_organisation("ceiling", "Ceiling")
    boss, someone = member(), member()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(boss, "admin")
        tx.tenancy.add_member(someone, "member")
    with kit.begin(org=org, actor=boss) as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.points.award(someone, 501),
            lambda: tx.points.award_many(awards={someone: 501}),
        ]
        for call in calls:
            with pytest.raises(ValidationFailed) as refused:
                call()
            assert refused.value.field == "points"
            assert refused.value.rule == "above_manual_award_max"
            assert "500" in refused.value.message_in("zh_CN")
            assert "手动发放" in refused.value.message_in("zh_CN")
        assert tx.points.balance(someone) == 0
        assert tx.points.award(someone, 500).balance_after == 500
    with kit.begin(org=org, actor=SYSTEM) as tx:  # the system actor (imports, scripts) is not
        assert tx.points.award(someone, 5000).balance_after == 5500


def test_the_default_ceiling_refuses_a_billion_points(
    pkit: Kit, porg: OrgRead, staff: dict[str, uuid.UUID]
) -> None:
    with pkit.begin(org=porg, actor=staff["staff"]) as tx, pytest.raises(ValidationFailed):
        tx.points.award(staff["member"], 10**9)
