"""Sign-up rules: capacity, waitlist and promotion, cut-off, double-booking, eligibility."""

from __future__ import annotations

import datetime as dt

import pytest
from volunteer_helpers import World

from ngo_kit import AlreadyExists, Kit, NotFound, PermissionDenied, ShiftFull, ValidationFailed
from ngo_kit.modules.volunteer import (
    CancellationClosed,
    DoubleBooked,
    NotEligible,
    ShiftClosed,
)
from ngo_kit.outbox import OutboxMessage


def test_sign_up_confirms_until_full_then_waitlists_in_arrival_order(world: World) -> None:
    shift = world.shift(capacity=2)
    people = [world.person(f"V{i}") for i in range(4)]
    results = []
    for person in people:
        with world.as_(person) as tx:
            results.append(tx.volunteer.sign_up(shift.id))
    assert [r.status for r in results] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert [r.position for r in results] == [None, None, 1, 2]
    assert [r.seq for r in results] == [1, 2, 3, 4]
    with world.as_() as tx:
        assert tx.volunteer.shift(shift.id).taken == 2


def test_cancel_promotes_first_waiting_and_sends_a_message(
    world: World, delivered_messages: list[OutboxMessage]
) -> None:
    shift = world.shift(capacity=1)
    first, second, third = (world.person(n) for n in ("A", "B", "C"))
    for person in (first, second, third):
        with world.as_(person) as tx:
            tx.volunteer.sign_up(shift.id)
    with world.as_() as tx:
        email = tx.registration.get_user(second).email
    with world.as_(first) as tx:
        cancelled = tx.volunteer.cancel(shift.id)
    assert cancelled.status == "cancelled"
    with world.as_(world.coordinator) as tx:
        rows = {s.user_id: s for s in tx.volunteer.signups(shift.id)}
        assert tx.volunteer.shift(shift.id).taken == 1
    assert rows[second].status == "confirmed" and rows[second].promoted_at is not None
    assert rows[third].status == "waitlisted" and rows[third].position == 1
    assert [
        m.recipient
        for m in delivered_messages
        if m.data.get("kind") == "volunteer.waitlist_promoted"
    ] == [email]


def test_cancelling_a_waitlist_place_promotes_nobody(world: World) -> None:
    shift = world.shift(capacity=1)
    a, b = world.person("A"), world.person("B")
    for person in (a, b):
        with world.as_(person) as tx:
            tx.volunteer.sign_up(shift.id)
    with world.as_(b) as tx:
        tx.volunteer.cancel(shift.id)
    with world.as_() as tx:
        assert tx.volunteer.shift(shift.id).taken == 1
        assert [s.status for s in tx.volunteer.signups(shift.id)] == ["confirmed", "cancelled"]


def test_sign_up_without_waitlist_refuses_a_full_shift(world: World) -> None:
    shift = world.shift(capacity=1)
    a, b = world.person("A"), world.person("B")
    with world.as_(a) as tx:
        tx.volunteer.sign_up(shift.id)
    with pytest.raises(ShiftFull), world.as_(b) as tx:
        tx.volunteer.sign_up(shift.id, waitlist=False)
    with world.as_() as tx:
        assert len(tx.volunteer.signups(shift.id)) == 1


def test_roles_have_their_own_capacity(world: World) -> None:
    shift = world.shift(
        capacity=None,
        roles=[
            {"name": "driver", "capacity": 1, "required_skills": ["driving"]},
            {"name": "packer", "capacity": 2},
        ],
    )
    assert shift.capacity == 3
    driver = world.person("D", skills={"driving": 3})
    other_driver = world.person("D2", skills={"driving": 2})
    packer = world.person("P")
    other_shift = world.shift(
        48, capacity=None, roles=[{"name": "driver", "capacity": 1, "required_skills": ["driving"]}]
    )
    with world.as_(driver) as tx:
        assert tx.volunteer.sign_up(shift.id, role="driver").status == "confirmed"
    with world.as_(other_driver) as tx:
        assert tx.volunteer.sign_up(shift.id, role="driver").status == "waitlisted"
    with world.as_(packer) as tx:
        assert tx.volunteer.sign_up(shift.id, role="packer").status == "confirmed"
        with pytest.raises(NotEligible) as info:
            tx.volunteer.sign_up(other_shift.id, role="driver")
        assert info.value.rule == "missing_skill"
    with world.as_(driver) as tx:
        tx.volunteer.cancel(shift.id)
    with world.as_() as tx:
        rows = {s.user_id: s.status for s in tx.volunteer.signups(shift.id)}
    assert rows[other_driver] == "confirmed"


def test_a_role_must_be_named_on_a_shift_with_roles(world: World) -> None:
    shift = world.shift(capacity=None, roles=[{"name": "packer", "capacity": 2}])
    person = world.person()
    with pytest.raises(ValidationFailed) as info, world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    assert getattr(info.value, "field", None) == "role"
    with pytest.raises(NotFound), world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id, role="chef")


def test_signing_up_twice_is_refused_and_a_key_repeats_the_first_result(world: World) -> None:
    shift = world.shift()
    person = world.person()
    with world.as_(person) as tx:
        first = tx.volunteer.sign_up(shift.id, key="k1")
        assert tx.volunteer.sign_up(shift.id, key="k1") == first
        with pytest.raises(AlreadyExists):
            tx.volunteer.sign_up(shift.id)
    with world.as_() as tx:
        assert tx.volunteer.shift(shift.id).taken == 1


def test_sign_up_again_after_cancelling_takes_a_new_arrival_number(world: World) -> None:
    shift = world.shift()
    person = world.person()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
        tx.volunteer.cancel(shift.id)
        again = tx.volunteer.sign_up(shift.id)
    assert again.status == "confirmed" and again.seq == 2


def test_overlapping_shifts_cannot_both_be_booked(world: World) -> None:
    morning = world.shift(24, length=3)
    overlapping = world.shift(26, length=3)
    later = world.shift(27, length=2)
    person = world.person()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(morning.id)
        with pytest.raises(DoubleBooked):
            tx.volunteer.sign_up(overlapping.id)
        assert tx.volunteer.sign_up(later.id).status == "confirmed"  # starts when morning ends


def test_a_waitlist_place_also_counts_as_booked(world: World) -> None:
    full = world.shift(24, capacity=1)
    overlapping = world.shift(25)
    a, b = world.person("A"), world.person("B")
    with world.as_(a) as tx:
        tx.volunteer.sign_up(full.id)
    with world.as_(b) as tx:
        assert tx.volunteer.sign_up(full.id).status == "waitlisted"
        with pytest.raises(DoubleBooked):
            tx.volunteer.sign_up(overlapping.id)


def test_cancellation_after_the_cutoff_is_refused_to_the_volunteer_but_not_a_coordinator(
    world: World,
) -> None:
    shift = world.shift(hours_from_now=5, cancel_cutoff_hours=24)
    person = world.person()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    with pytest.raises(CancellationClosed), world.as_(person) as tx:
        tx.volunteer.cancel(shift.id)
    with world.as_(world.coordinator) as tx:
        assert tx.volunteer.cancel(shift.id, person).status == "cancelled"


def test_organisation_cutoff_applies_when_the_shift_sets_none(vkit, world: World) -> None:  # type: ignore[no-untyped-def]
    with world.as_() as tx:
        tx.tenancy.update_organisation(settings={"volunteer": {"cancel_cutoff_hours": 12}})
    world.org = world.org.model_copy(
        update={"settings": {"volunteer": {"cancel_cutoff_hours": 12}}}
    )
    shift = world.shift(hours_from_now=6)
    person = world.person()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    with pytest.raises(CancellationClosed), world.as_(person) as tx:
        tx.volunteer.cancel(shift.id)


# --- eligibility ----------------------------------------------------------------------------


def test_an_applicant_is_not_eligible(world: World) -> None:
    shift = world.shift()
    person = world.person(approve=False)
    with pytest.raises(NotEligible) as info, world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    assert info.value.rule == "not_approved"


def test_an_inactive_volunteer_is_not_eligible(world: World) -> None:
    shift = world.shift()
    person = world.person()
    with world.as_(world.coordinator) as tx:
        tx.volunteer.deactivate(person)
    with pytest.raises(NotEligible), world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)


def test_a_missing_skill_makes_a_volunteer_ineligible(world: World) -> None:
    shift = world.shift(required_skills=["first_aid"])
    without = world.person()
    holder = world.person(skills={"first_aid": 2})
    with pytest.raises(NotEligible) as info, world.as_(without) as tx:
        tx.volunteer.sign_up(shift.id)
    assert info.value.rule == "missing_skill"
    assert "first_aid" in str(info.value)
    with world.as_(holder) as tx:
        assert tx.volunteer.sign_up(shift.id).status == "confirmed"


def test_a_certification_must_be_held_and_valid_on_the_shift_date(world: World) -> None:
    shift = world.shift(hours_from_now=24 * 10, required_certifications=["first_aid"])
    none = world.person("none")
    expiring = world.person(
        "expiring",
        certifications={"first_aid": (dt.date.today() + dt.timedelta(days=5)).isoformat()},
    )
    valid = world.person(
        "valid", certifications={"first_aid": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    )
    lifelong = world.person("lifelong", certifications={"first_aid": None})
    with pytest.raises(NotEligible) as info, world.as_(none) as tx:
        tx.volunteer.sign_up(shift.id)
    assert info.value.rule == "missing_certification"
    with pytest.raises(NotEligible) as info, world.as_(expiring) as tx:
        tx.volunteer.sign_up(shift.id)
    assert info.value.rule == "certification_expired"
    for person in (valid, lifelong):
        with world.as_(person) as tx:
            assert tx.volunteer.sign_up(shift.id).status == "confirmed"


def test_minimum_age_is_checked_on_the_shift_date(world: World) -> None:
    shift = world.shift(hours_from_now=24 * 3, min_age=18)
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).date()
    young = world.person("young", birth_date=day.replace(year=day.year - 18) + dt.timedelta(days=2))
    of_age = world.person(
        "of age", birth_date=day.replace(year=day.year - 18) - dt.timedelta(days=2)
    )
    unknown = world.person("unknown", birth_date=None)
    with pytest.raises(NotEligible) as info, world.as_(young) as tx:
        tx.volunteer.sign_up(shift.id)
    assert info.value.rule == "too_young"
    with pytest.raises(NotEligible) as info, world.as_(unknown) as tx:
        tx.volunteer.sign_up(shift.id)
    assert info.value.rule == "age_unknown"
    with world.as_(of_age) as tx:
        assert tx.volunteer.sign_up(shift.id).status == "confirmed"


def test_a_started_or_completed_shift_takes_no_sign_ups(world: World) -> None:
    person = world.person()
    started = world.shift(hours_from_now=-1)
    with pytest.raises(ShiftClosed), world.as_(person) as tx:
        tx.volunteer.sign_up(started.id)
    shift = world.shift()
    with world.as_(world.coordinator) as tx:
        tx.volunteer.complete_shift(shift.id)
    with pytest.raises(ShiftClosed), world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)


def test_signing_up_someone_else_needs_shifts_manage(world: World) -> None:
    shift = world.shift()
    a, b = world.person("A"), world.person("B")
    with pytest.raises(PermissionDenied), world.as_(a) as tx:
        tx.volunteer.sign_up(shift.id, b)
    with world.as_(world.coordinator) as tx:
        assert tx.volunteer.sign_up(shift.id, b).user_id == b


def test_a_failed_sign_up_writes_nothing(world: World) -> None:
    shift = world.shift(required_skills=["driving"])
    person = world.person()
    with pytest.raises(NotEligible), world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    with world.as_() as tx:
        fresh = tx.volunteer.shift(shift.id)
        assert fresh.taken == 0 and tx.volunteer.signups(shift.id) == []


def test_the_promotion_message_speaks_the_organisation_language(
    vkit: Kit, delivered_messages: list[OutboxMessage]
) -> None:
    org = vkit.create_organisation(
        "zh-centre", "中文中心", locale="zh_CN", timezone="Asia/Shanghai"
    )
    world = World(vkit, org)
    shift = world.shift(capacity=1, place="社区中心")
    a, b = world.person("甲"), world.person("乙")
    for person in (a, b):
        with world.as_(person) as tx:
            tx.volunteer.sign_up(shift.id)
    with world.as_(a) as tx:
        tx.volunteer.cancel(shift.id)
    (message,) = [
        m for m in delivered_messages if m.data.get("kind") == "volunteer.waitlist_promoted"
    ]
    assert message.subject == "您已获得班次名额"
    assert "社区中心" in message.body and message.body.startswith("有名额空出")
