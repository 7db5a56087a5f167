"""Separation of duties: a coordinator does not record, approve or certify their own hours."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from volunteer_helpers import World

from ngo_kit import PermissionDenied
from ngo_kit.errors import SelfActionRefused

DAY = dt.date(2026, 11, 2)


@pytest.fixture
def staff_volunteer(world: World) -> World:
    """The world's coordinator also volunteers (an approved profile), as in small NGOs."""
    with world.as_() as tx:
        tx.volunteer.save_profile(user_id=world.coordinator)
        tx.volunteer.approve(world.coordinator)
    return world


def test_a_coordinator_cannot_record_their_own_hours(staff_volunteer: World) -> None:
    world = staff_volunteer
    me = world.coordinator
    with world.as_(me) as tx:
        with pytest.raises(SelfActionRefused) as refused:
            tx.volunteer.record_hours(me, 8, served_on=DAY)
        assert refused.value.code == "self_action_refused"
        assert refused.value.permission == "hours.approve"
        assert "hours.approve" in refused.value.message_in("zh_CN")
        assert "职责分离" in refused.value.message_in("zh_CN")
        assert tx.volunteer.hours(me) == []
    with world.as_(me) as tx:  # other people's hours stay theirs to record
        other = world.person("Ann")
        tx.volunteer.record_hours(other, 2, served_on=DAY)
    with world.as_(me) as tx:
        assert tx.volunteer.profile(me).hours_total == 0


def test_a_coordinator_cannot_approve_their_own_claim(staff_volunteer: World) -> None:
    world = staff_volunteer
    me = world.coordinator
    with world.as_(me) as tx:
        claim = tx.volunteer.claim_hours(served_on=DAY, hours=Decimal(5), description="stall")
    with world.as_(me) as tx:
        with pytest.raises(SelfActionRefused):
            tx.volunteer.approve_claim(claim.id)
        with pytest.raises(PermissionDenied):
            tx.volunteer.reject_claim(claim.id, reason="mine")
    second = world.person("Second", role="staff", profile=False)
    with world.as_(second) as tx:
        assert tx.volunteer.approve_claim(claim.id).hours == Decimal("5.00")


def test_a_coordinator_cannot_certify_themselves(staff_volunteer: World) -> None:
    world = staff_volunteer
    me = world.coordinator
    with world.as_() as tx:
        tx.volunteer.record_hours(me, 3, served_on=DAY)
    with world.as_(me) as tx, pytest.raises(SelfActionRefused):
        tx.volunteer.issue_certificate(me)
    second = world.person("Second", role="staff", profile=False)
    with world.as_(second) as tx:
        assert tx.volunteer.issue_certificate(me).hours == Decimal("3.00")


def test_an_organisation_may_allow_self_action_per_permission(staff_volunteer: World) -> None:
    world = staff_volunteer
    me = world.coordinator
    with world.as_() as tx:
        org = tx.tenancy.allow_self_action("hours.approve")
        assert tx.tenancy.self_action_allowed("hours.approve")
        assert not tx.tenancy.self_action_allowed("certificates.issue")
        assert org.settings["self_action_allowed"] == ["hours.approve"]
    with world.as_(me) as tx:
        assert tx.volunteer.record_hours(me, 4, served_on=DAY).hours == Decimal("4.00")
        with pytest.raises(SelfActionRefused):  # allowed for hours, not for certificates
            tx.volunteer.issue_certificate(me)
    with world.as_() as tx:
        tx.tenancy.allow_self_action("hours.approve", allowed=False)
    with world.as_(me) as tx, pytest.raises(SelfActionRefused):
        tx.volunteer.record_hours(me, 4, served_on=DAY)


def test_allowing_self_action_needs_org_manage_and_a_declared_permission(world: World) -> None:
    from ngo_kit import ValidationFailed

    with world.as_(world.coordinator) as tx, pytest.raises(PermissionDenied):
        tx.tenancy.allow_self_action("hours.approve")
    with world.as_() as tx:
        for bad in ("hours.aprove", "*"):
            with pytest.raises(ValidationFailed) as refused:
                tx.tenancy.allow_self_action(bad)
            assert refused.value.field == "permission"
