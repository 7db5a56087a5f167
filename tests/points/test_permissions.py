"""Who may do what: staff award, admins adjust, members see and spend their own points."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from points_helpers import member

from ngo_kit import SYSTEM, Kit, PermissionDenied
from ngo_kit.modules.points import PERMISSIONS
from ngo_kit.tenancy import OrgRead


@pytest.fixture
def people(pkit: Kit, porg: OrgRead) -> dict[str, uuid.UUID]:
    ids = {"admin": member(), "staff": member(), "member": member(), "other": member()}
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        for role in ("admin", "staff", "member"):
            tx.tenancy.add_member(ids[role], role)
        tx.tenancy.add_member(ids["other"], "member")
        tx.points.configure(transfers_allowed=True)
        tx.points.award(ids["member"], 100)
    return ids


def test_staff_award_but_only_admins_adjust_and_configure(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    m = people["member"]
    with pkit.begin(org=porg, actor=people["staff"]) as tx:
        award = tx.points.award(m, 5)
        assert tx.points.balance(m) == 105
        calls: list[Callable[[], object]] = [
            lambda: tx.points.deduct(m, 1),
            lambda: tx.points.reverse(award.id),
            lambda: tx.points.configure(expiry_months=3),
            lambda: tx.points.add_reward(code="x", name="X", price=1),
            lambda: tx.points.add_rule(name="r", rule_type="manual"),
            lambda: tx.points.expire(),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied):
                call()
    with pkit.begin(org=porg, actor=people["admin"]) as tx:
        tx.points.deduct(m, 5)
        tx.points.configure(expiry_months=3)


def test_members_see_and_spend_only_their_own_points(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    me, other = people["member"], people["other"]
    with pkit.begin(org=porg, actor=me) as tx:
        assert tx.points.balance(me) == 100
        assert tx.points.statement(me)
        tx.points.transfer(from_member=me, to_member=other, points=10)
        calls: list[Callable[[], object]] = [
            lambda: tx.points.award(me, 1),
            lambda: tx.points.balance(other),
            lambda: tx.points.statement(other),
            lambda: tx.points.transfer(from_member=other, to_member=me, points=1),
            lambda: tx.points.export_csv(),
            lambda: tx.points.redemptions(),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied):
                call()
    with pkit.begin(org=porg) as tx, pytest.raises(PermissionDenied):  # anonymous
        tx.points.award(me, 1)


def test_a_member_cannot_fire_earning_rules_for_themselves(
    pkit: Kit, porg: OrgRead, people: dict[str, uuid.UUID]
) -> None:
    me = people["member"]
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        tx.points.add_rule(name="daily", rule_type="daily_check_in", points=7)
    with pkit.begin(org=porg, actor=me) as tx, pytest.raises(PermissionDenied) as info:
        tx.points.apply_rules("check_in", me, key="again")
    assert info.value.permission == "points.award"
    with pkit.begin(org=porg, actor=me) as tx:  # checking in is theirs, once a day
        assert [a.points for a in tx.points.check_in(me)] == [7]
    with pkit.begin(org=porg, actor=people["staff"]) as tx:  # staff hold points.award
        assert [a.points for a in tx.points.apply_rules("check_in", me, key="staff")] == [7]
        assert tx.points.balance(me) == 114


def test_every_declared_permission_is_checked_by_the_service() -> None:
    import inspect
    import re
    import sys

    from ngo_kit.modules.points.service import PointsService

    # the service is composed of one class per part, each in its own file
    source = "".join(
        inspect.getsource(sys.modules[part.__module__])
        for part in PointsService.__mro__
        if part is not object
    )
    for permission in PERMISSIONS:
        checked = rf'\.require(_for)?\("{re.escape(permission.name)}"'
        assert re.search(checked, source), permission.name
