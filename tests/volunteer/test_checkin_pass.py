"""A volunteer's own check-in pass (shown at the door, scanned by a coordinator), and
certificates volunteers issue for themselves where the organisation allows it."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from volunteer_helpers import World

from ngo_kit import NotFound, PermissionDenied, TokenTampered, TokenWrongPurpose
from ngo_kit.modules.volunteer import TokenForAnotherShift
from ngo_kit.tenancy import SYSTEM


def _placed(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    person = world.person("李华")
    shift = world.shift()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    return person, shift.id


def test_a_coordinator_checks_in_the_holder_of_a_pass(world: World) -> None:
    person, shift_id = _placed(world)
    with world.as_(person) as tx:
        token = tx.volunteer.checkin_pass(shift_id)
        qr = tx.volunteer.checkin_pass_qr(shift_id, link="https://hub.example/check-in?t={token}")
    assert qr.startswith(b"<?xml") and b"<svg" in qr
    with world.as_(world.coordinator) as tx:
        seen = tx.volunteer.read_pass(token)
        assert (seen.user_id, seen.shift_id, seen.checked_in_at) == (person, shift_id, None)
        done = tx.volunteer.check_in_with_pass(token)
    assert done.user_id == person and done.checked_in_at is not None


def test_only_a_coordinator_may_use_a_pass(world: World) -> None:
    person, shift_id = _placed(world)
    with world.as_(person) as tx:
        token = tx.volunteer.checkin_pass(shift_id)
    with pytest.raises(PermissionDenied), world.as_(person) as tx:
        tx.volunteer.check_in_with_pass(token)


def test_there_is_no_pass_without_a_confirmed_place(world: World) -> None:
    person = world.person()
    shift = world.shift()
    with pytest.raises(NotFound), world.as_(person) as tx:
        tx.volunteer.checkin_pass(shift.id)


def test_a_pass_of_a_cancelled_place_no_longer_checks_in(world: World) -> None:
    person, shift_id = _placed(world)
    with world.as_(person) as tx:
        token = tx.volunteer.checkin_pass(shift_id)
        tx.volunteer.cancel(shift_id)
    with pytest.raises(NotFound), world.as_(world.coordinator) as tx:
        tx.volunteer.check_in_with_pass(token)


def test_forged_door_and_foreign_passes_are_refused(world: World, other_world: World) -> None:
    person, shift_id = _placed(world)
    with world.as_(person) as tx:
        token = tx.volunteer.checkin_pass(shift_id)
    with world.as_(world.coordinator) as tx:
        door = tx.volunteer.checkin_token(shift_id)
    with pytest.raises(TokenTampered), world.as_(world.coordinator) as tx:
        tx.volunteer.check_in_with_pass(token[:-3] + "abc")
    with pytest.raises(TokenWrongPurpose), world.as_(world.coordinator) as tx:
        tx.volunteer.check_in_with_pass(door)
    with pytest.raises(TokenForAnotherShift), other_world.as_(other_world.coordinator) as tx:
        tx.volunteer.check_in_with_pass(token)


def test_volunteers_issue_their_own_certificates_only_where_allowed(world: World) -> None:
    person = world.person("张小明")
    with world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(person, "6", served_on=dt.date(2026, 3, 1))
    with pytest.raises(PermissionDenied), world.as_(person) as tx:
        tx.volunteer.issue_certificate(person)
    with world.kit.begin(org=world.org, actor=SYSTEM) as tx:
        tx.tenancy.update_organisation(settings={"volunteer": {"self_service_certificates": True}})
    with world.as_(person) as tx:
        mine = tx.volunteer.issue_certificate(person)
        assert [c.id for c in tx.volunteer.certificates()] == [mine.id]
        assert mine.hours == Decimal("6.00")
        with pytest.raises(PermissionDenied):
            tx.volunteer.issue_certificate(world.coordinator)


def test_the_certificate_list_leaves_out_revoked_ones_and_other_people(world: World) -> None:
    person, other = world.person(), world.person()
    with world.as_(world.coordinator) as tx:
        first = tx.volunteer.issue_certificate(person)
        second = tx.volunteer.issue_certificate(person)
        tx.volunteer.issue_certificate(other)
        tx.volunteer.revoke_certificate(first.id)
        assert [c.id for c in tx.volunteer.certificates(person)] == [second.id]
    with pytest.raises(PermissionDenied), world.as_(other) as tx:
        tx.volunteer.certificates(person)
