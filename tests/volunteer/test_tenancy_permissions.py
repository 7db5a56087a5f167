"""Tenancy isolation for every service method, and who may do what."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from volunteer_helpers import World

from ngo_kit import NgoKitError, NotFound, PermissionDenied, ValidationFailed


def test_another_organisations_things_are_not_found(world: World, other_world: World) -> None:
    theirs = other_world.shift()
    their_person = other_world.person("theirs")
    with other_world.as_(other_world.coordinator) as tx:
        their_task = tx.volunteer.create_task(title="Scarves", quantity=10)
        their_entry = tx.volunteer.record_hours(their_person, "2", served_on=dt.date.today())
        their_claim = tx.volunteer.claim_hours(
            user_id=their_person, served_on=dt.date.today(), hours="1"
        )
        their_cert = tx.volunteer.issue_certificate(their_person)
        their_assignment = tx.volunteer.assign(their_task.id, their_person, 2)
    mine = world.person("mine")
    calls: list[Callable[[Any], Any]] = [
        lambda v: v.shift(theirs.id),
        lambda v: v.activity(theirs.activity_id),
        lambda v: v.signups(theirs.id),
        lambda v: v.sign_up(theirs.id, mine),
        lambda v: v.cancel(theirs.id, mine),
        lambda v: v.check_in(theirs.id, mine),
        lambda v: v.complete_shift(theirs.id),
        lambda v: v.checkin_token(theirs.id),
        lambda v: v.match(theirs.id),
        lambda v: v.profile(their_person),
        lambda v: v.approve(their_person),
        lambda v: v.record_hours(their_person, "1", served_on=dt.date.today()),
        lambda v: v.reverse_hours(their_entry.id, reason="x"),
        lambda v: v.approve_claim(their_claim.id),
        lambda v: v.issue_certificate(their_person),
        lambda v: v.certificate(their_cert.id),
        lambda v: v.revoke_certificate(their_cert.id),
        lambda v: v.task(their_task.id),
        lambda v: v.assign(their_task.id, mine, 1),
        lambda v: v.assignment(their_assignment.id),
        lambda v: v.create_shift(
            activity_id=theirs.activity_id,
            starts_at=theirs.starts_at,
            ends_at=theirs.ends_at,
            capacity=1,
        ),
        lambda v: v.clone_activity(theirs.activity_id),
        lambda v: v.save_profile(user_id=their_person),
    ]
    for call in calls:
        with pytest.raises(NotFound), world.as_() as tx:
            call(tx.volunteer)
    with world.as_() as tx:
        assert their_person not in tx.volunteer.search(status="approved")
        assert tx.volunteer.hours_report() == []
        assert all(s.id != theirs.id for s in tx.volunteer.shifts())
        assert tx.volunteer.claims(status=None) == []


def test_a_volunteer_sees_only_their_own_things(world: World) -> None:
    a, b = world.person("A"), world.person("B")
    with world.as_(a) as tx:
        assert tx.volunteer.profile().user_id == a
        calls: list[Callable[[], Any]] = [
            lambda: tx.volunteer.profile(b),
            lambda: tx.volunteer.hours(b),
            lambda: tx.volunteer.my_signups(b),
            lambda: tx.volunteer.search("B"),
            lambda: tx.volunteer.hours_report(),
            lambda: tx.volunteer.recommend(b),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied):
                call()


@pytest.mark.parametrize(
    ("permission", "call"),
    [
        ("volunteer.manage", lambda v, w, p: v.approve(p)),
        ("volunteer.manage", lambda v, w, p: v.add_skill("cooking", "Cooking")),
        ("volunteer.manage", lambda v, w, p: v.create_task(title="t", quantity=1)),
        ("volunteer.manage", lambda v, w, p: v.import_profiles([])),
        ("shifts.manage", lambda v, w, p: v.create_activity(title="x")),
        ("shifts.manage", lambda v, w, p: v.match(w.shift_id)),
        ("attendance.record", lambda v, w, p: v.check_in(w.shift_id, p)),
        ("attendance.record", lambda v, w, p: v.complete_shift(w.shift_id)),
        ("attendance.record", lambda v, w, p: v.checkin_token(w.shift_id)),
        ("hours.approve", lambda v, w, p: v.record_hours(p, "1", served_on=dt.date.today())),
        ("hours.approve", lambda v, w, p: v.claims()),
        ("certificates.issue", lambda v, w, p: v.issue_certificate(p)),
        ("volunteer.view", lambda v, w, p: v.signups(w.shift_id)),
    ],
)
def test_each_permission_guards_its_calls(
    world: World, permission: str, call: Callable[..., Any]
) -> None:
    person = world.person()
    shift = world.shift()
    world.shift_id = shift.id  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied) as info, world.as_(person) as tx:
        call(tx.volunteer, world, person)
    assert info.value.permission == permission
    with world.as_(world.coordinator) as tx:  # staff hold every volunteer permission by default
        try:
            call(tx.volunteer, world, person)
        except PermissionDenied:
            raise
        except NgoKitError:  # another rule may refuse (already approved, not signed up)
            pass


def test_an_anonymous_caller_can_do_nothing(world: World) -> None:
    shift = world.shift()
    with pytest.raises(ValidationFailed), world.kit.begin(org=world.org) as tx:
        tx.volunteer.sign_up(shift.id)
    with pytest.raises(PermissionDenied), world.kit.begin(org=world.org) as tx:
        tx.volunteer.profile(uuid.uuid4())


def test_a_profile_is_only_for_members(world: World) -> None:
    with pytest.raises(NotFound) as info, world.as_() as tx:
        tx.volunteer.save_profile(user_id=uuid.uuid4())
    assert info.value.kind == "Member"
