"""Attendance, QR check-in tokens, hours rounding, claims, reversal and the hours ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from volunteer_helpers import World

from ngo_kit import (
    Kit,
    PermissionDenied,
    PluginError,
    TokenTampered,
    TokenWrongPurpose,
    ValidationFailed,
    hookimpl,
)
from ngo_kit.modules.volunteer import (
    AlreadyReversed,
    CheckInClosed,
    TokenForAnotherShift,
    WrongState,
)
from ngo_kit.modules.volunteer.service import round_hours
from ngo_kit.testing import KitFactory


@pytest.mark.parametrize(
    ("minutes", "unit", "mode", "expected"),
    [
        (127, 15, "nearest", "2.00"),
        (128, 15, "nearest", "2.25"),  # 8.53 quarters rounds up
        (142, 15, "down", "2.25"),
        (121, 15, "up", "2.25"),
        (90, 60, "nearest", "2.00"),  # half up
        (89, 60, "nearest", "1.00"),
        (50, 30, "down", "0.50"),
        (0, 15, "nearest", "0.00"),
        (-5, 15, "nearest", "0.00"),
    ],
)
def test_hours_are_rounded_by_the_organisation_rule(
    minutes: int, unit: int, mode: str, expected: str
) -> None:
    assert round_hours(minutes * 60, unit, mode) == Decimal(expected)


class Recorder:
    """Records the volunteer module's events."""

    ngo_kit_plugin_name = "volunteer-test-recorder"

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def ngo_kit_hours_approved(self, tx: Any, hours: Any) -> None:
        self.events.append(("hours_approved", hours))

    @hookimpl
    def ngo_kit_hours_reversed(self, tx: Any, hours: Any, original: Any) -> None:
        self.events.append(("hours_reversed", (hours, original)))

    @hookimpl
    def ngo_kit_shift_completed(self, tx: Any, shift: Any, attendance: Any) -> None:
        self.events.append(("shift_completed", attendance))

    @hookimpl
    def ngo_kit_shift_signed_up(self, tx: Any, shift: Any, signup: Any) -> None:
        self.events.append(("signed_up", signup))

    @hookimpl
    def ngo_kit_shift_cancelled(self, tx: Any, shift: Any, signup: Any) -> None:
        self.events.append(("cancelled", signup))

    @hookimpl
    def ngo_kit_waitlist_promoted(self, tx: Any, shift: Any, signup: Any) -> None:
        self.events.append(("promoted", signup))

    @hookimpl
    def ngo_kit_volunteer_approved(self, tx: Any, profile: Any) -> None:
        self.events.append(("approved", profile))

    @hookimpl
    def ngo_kit_task_completed(self, tx: Any, task: Any, assignment: Any) -> None:
        self.events.append(("task_completed", (task, assignment)))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def rworld(kit_factory: KitFactory, recorder: Recorder) -> World:
    kit = kit_factory(modules=["registration", "volunteer"], plugins=[recorder])
    org = kit.create_organisation("rec", "Recorded", timezone="Asia/Shanghai")
    return World(kit, org)


def _signed_up(world: World, hours_from_now: float = 0.1, **fields: Any) -> tuple[Any, uuid.UUID]:
    """A shift starting soon, created as if it had been open earlier, with one confirmed person."""
    shift = world.shift(hours_from_now=24, **fields)
    person = world.person()
    with world.as_(person) as tx:
        tx.volunteer.sign_up(shift.id)
    if hours_from_now != 24:
        _move(world, shift.id, hours_from_now)
        with world.as_() as tx:
            shift = tx.volunteer.shift(shift.id)
    return shift, person


def _move(world: World, shift_id: uuid.UUID, hours_from_now: float) -> None:
    """Move a shift (and its sign-ups) in time, as a coordinator changing the schedule would."""
    import sqlalchemy as sa

    from ngo_kit.modules.volunteer.models import Shift, SignUp

    with world.as_() as tx:
        row = tx.get_owned(Shift, shift_id)
        start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours_from_now)
        end = start + (row.ends_at - row.starts_at)
        tx.session.execute(
            sa.update(Shift).where(Shift.id == shift_id).values(starts_at=start, ends_at=end)
        )
        tx.session.execute(
            sa.update(SignUp)
            .where(SignUp.shift_id == shift_id)
            .values(starts_at=start, ends_at=end)
        )


def test_coordinator_check_in_and_out_records_rounded_hours(
    rworld: World, recorder: Recorder
) -> None:
    shift, person = _signed_up(rworld)
    start = shift.starts_at
    with rworld.as_(rworld.coordinator) as tx:
        tx.volunteer.check_in(shift.id, person, at=start + dt.timedelta(minutes=7))
        hours = tx.volunteer.check_out(shift.id, person, at=start + dt.timedelta(minutes=7 + 128))
    assert hours.hours == Decimal("2.25") and hours.source == "attendance"
    assert hours.shift_id == shift.id and hours.activity_id == shift.activity_id
    with rworld.as_(person) as tx:
        assert tx.volunteer.profile().hours_total == Decimal("2.25")
        assert tx.volunteer.profile().attended_count == 1
    approved = [e for n, e in recorder.events if n == "hours_approved"]
    assert approved == [hours]


def test_hours_count_only_inside_the_shift_by_default(world: World) -> None:
    shift, person = _signed_up(world, length=2)
    with world.as_(world.coordinator) as tx:
        tx.volunteer.check_in(shift.id, person, at=shift.starts_at - dt.timedelta(minutes=40))
        hours = tx.volunteer.check_out(
            shift.id, person, at=shift.ends_at + dt.timedelta(minutes=50)
        )
    assert hours.hours == Decimal("2.00")


def test_checking_out_without_checking_in_is_refused(world: World) -> None:
    shift, person = _signed_up(world)
    with pytest.raises(WrongState), world.as_(world.coordinator) as tx:
        tx.volunteer.check_out(shift.id, person)


def test_qr_token_checks_in_inside_its_window(world: World) -> None:
    shift, person = _signed_up(world, hours_from_now=0.2)
    with world.as_(world.coordinator) as tx:
        token = tx.volunteer.checkin_token(shift.id)
        svg = tx.volunteer.checkin_qr(shift.id)
        png = tx.volunteer.checkin_qr(shift.id, kind="png")
    assert svg.startswith(b"<?xml") or b"<svg" in svg[:200]
    assert png.startswith(b"\x89PNG")
    with world.as_(person) as tx:
        signup = tx.volunteer.check_in(shift.id, token=token)
    assert signup.checked_in_at is not None


def test_qr_token_outside_its_window_is_refused(world: World) -> None:
    shift, person = _signed_up(world, hours_from_now=5)
    with world.as_(world.coordinator) as tx:
        token = tx.volunteer.checkin_token(shift.id)
    with pytest.raises(CheckInClosed) as info, world.as_(person) as tx:
        tx.volunteer.check_in(shift.id, token=token)
    assert info.value.code == "checkin_closed"
    _move(world, shift.id, -10)  # long over
    with pytest.raises(CheckInClosed), world.as_(person) as tx:
        tx.volunteer.check_in(shift.id, token=token)


def test_qr_token_for_another_shift_is_refused(world: World) -> None:
    shift, person = _signed_up(world, hours_from_now=0.2)
    other = world.shift(hours_from_now=30)
    with world.as_(world.coordinator) as tx:
        token = tx.volunteer.checkin_token(other.id)
    with pytest.raises(TokenForAnotherShift), world.as_(person) as tx:
        tx.volunteer.check_in(shift.id, token=token)


def test_tampered_or_foreign_qr_tokens_are_refused(world: World) -> None:
    shift, person = _signed_up(world, hours_from_now=0.2)
    with world.as_(world.coordinator) as tx:
        token = tx.volunteer.checkin_token(shift.id)
        cert_token = tx.volunteer.issue_certificate(person).token
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    with pytest.raises(TokenTampered), world.as_(person) as tx:
        tx.volunteer.check_in(shift.id, token=forged)
    with pytest.raises(TokenWrongPurpose), world.as_(person) as tx:
        tx.volunteer.check_in(shift.id, token=cert_token)


def test_a_token_cannot_check_in_someone_else(world: World) -> None:
    shift, person = _signed_up(world, hours_from_now=0.2)
    other = world.person("other")
    with world.as_(world.coordinator) as tx:
        token = tx.volunteer.checkin_token(shift.id)
    with pytest.raises(PermissionDenied), world.as_(other) as tx:
        tx.volunteer.check_in(shift.id, person, token=token)


def test_completing_a_shift_marks_no_shows_and_fires_shift_completed(
    rworld: World, recorder: Recorder
) -> None:
    shift = rworld.shift(capacity=3)
    came, stayed, absent = rworld.person("came"), rworld.person("stayed"), rworld.person("absent")
    for person in (came, stayed, absent):
        with rworld.as_(person) as tx:
            tx.volunteer.sign_up(shift.id)
    with rworld.as_(rworld.coordinator) as tx:
        tx.volunteer.check_in(shift.id, came, at=shift.starts_at)
        tx.volunteer.check_out(shift.id, came, at=shift.starts_at + dt.timedelta(hours=1))
        tx.volunteer.check_in(shift.id, stayed, at=shift.starts_at)
        attendance = tx.volunteer.complete_shift(shift.id)
    assert set(attendance.attended) == {came, stayed}
    assert attendance.no_shows == (absent,)
    assert [h.hours for h in attendance.hours] == [
        Decimal("3.00")
    ]  # stayed: checked out at the end
    assert recorder.names().count("shift_completed") == 1
    with rworld.as_(rworld.coordinator) as tx:
        assert tx.volunteer.profile(absent).no_show_count == 1
        statuses = {s.user_id: s.status for s in tx.volunteer.signups(shift.id)}
    assert statuses == {came: "attended", stayed: "attended", absent: "no_show"}


def test_claims_are_approved_or_rejected_by_a_coordinator(
    rworld: World, recorder: Recorder
) -> None:
    person = rworld.person()
    with rworld.as_(person) as tx:
        claim = tx.volunteer.claim_hours(
            served_on=dt.date.today(), hours="3.5", description="phone calls", key="c1"
        )
        assert tx.volunteer.claim_hours(served_on=dt.date.today(), hours="3.5", key="c1") == claim
        second = tx.volunteer.claim_hours(served_on=dt.date.today(), hours="1")
        with pytest.raises(PermissionDenied):
            tx.volunteer.approve_claim(claim.id)
    with rworld.as_(rworld.coordinator) as tx:
        assert [c.id for c in tx.volunteer.claims()] == [claim.id, second.id]
        entry = tx.volunteer.approve_claim(claim.id)
        rejected = tx.volunteer.reject_claim(second.id, reason="not our activity")
        with pytest.raises(WrongState):
            tx.volunteer.approve_claim(claim.id)
    assert entry.hours == Decimal("3.50") and entry.claim_id == claim.id
    assert rejected.status == "rejected" and rejected.reason == "not our activity"
    assert [e for n, e in recorder.events if n == "hours_approved"] == [entry]
    with rworld.as_(person) as tx:
        assert tx.volunteer.profile().hours_total == Decimal("3.50")


def test_claims_refuse_bad_hours(world: World) -> None:
    person = world.person()
    for bad in ("0", "-1", "25", "1.234"):
        with pytest.raises(ValidationFailed) as info, world.as_(person) as tx:
            tx.volunteer.claim_hours(served_on=dt.date.today(), hours=bad)
        assert info.value.field == "hours"


def test_a_reviewer_cannot_approve_their_own_claim(world: World) -> None:
    with world.as_() as tx:
        tx.volunteer.save_profile(user_id=world.coordinator)
    with world.as_(world.coordinator) as tx:
        claim = tx.volunteer.claim_hours(served_on=dt.date.today(), hours="2")
        with pytest.raises(PermissionDenied):
            tx.volunteer.approve_claim(claim.id)


def test_reversal_is_a_negative_entry_and_happens_once(rworld: World, recorder: Recorder) -> None:
    person = rworld.person()
    with rworld.as_(rworld.coordinator) as tx:
        entry = tx.volunteer.record_hours(person, "4", served_on=dt.date.today())
        reversal = tx.volunteer.reverse_hours(entry.id, reason="entered twice")
        with pytest.raises(AlreadyReversed):
            tx.volunteer.reverse_hours(entry.id, reason="again")
        with pytest.raises(AlreadyReversed):
            tx.volunteer.reverse_hours(reversal.id, reason="undo the undo")
        history = tx.volunteer.hours(person)
        total = tx.volunteer.profile(person).hours_total
    assert reversal.hours == Decimal("-4.00") and reversal.reverses_id == entry.id
    assert [h.hours for h in history] == [Decimal("4.00"), Decimal("-4.00")]
    assert total == Decimal("0.00")
    reversed_events = [e for n, e in recorder.events if n == "hours_reversed"]
    assert reversed_events == [(reversal, entry)]


def test_the_hours_ledger_verifies_and_detects_tampering(vkit: Kit, world: World) -> None:
    import sqlalchemy as sa

    from ngo_kit.modules.volunteer.models import HoursEntry

    person = world.person()
    with world.as_(world.coordinator) as tx:
        first = tx.volunteer.record_hours(person, "2", served_on=dt.date.today())
        tx.volunteer.record_hours(person, "3", served_on=dt.date.today())
    assert vkit.verify() == []
    with vkit.engine.begin() as conn:
        conn.execute(
            sa.update(HoursEntry).where(HoursEntry.id == first.id).values(hours=Decimal("20"))
        )
    problems = [p for p in vkit.verify() if p.check.startswith("volunteer")]
    assert {p.check for p in problems} == {"volunteer_hours", "volunteer_hours_totals"}
    assert any("altered" in p.message for p in problems)


def test_a_failing_hours_hook_rolls_the_whole_check_out_back(kit_factory: KitFactory) -> None:
    class Broken:
        ngo_kit_plugin_name = "broken-bridge"

        @hookimpl
        def ngo_kit_hours_approved(self, tx: Any, hours: Any) -> None:
            raise RuntimeError("points service down")

    kit = kit_factory(modules=["registration", "volunteer"], plugins=[Broken()])
    world = World(kit, kit.create_organisation("bb", "B"))
    person = world.person()
    with pytest.raises(PluginError) as info, world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(person, "2", served_on=dt.date.today())
    assert "broken-bridge" in str(info.value)
    with world.as_(world.coordinator) as tx:
        assert tx.volunteer.hours(person) == []
        assert tx.volunteer.profile(person).hours_total == Decimal(0)


def test_sign_up_cancel_promote_and_approve_events_fire(rworld: World, recorder: Recorder) -> None:
    shift = rworld.shift(capacity=1)
    a, b = rworld.person("A"), rworld.person("B")
    for person in (a, b):
        with rworld.as_(person) as tx:
            tx.volunteer.sign_up(shift.id)
    with rworld.as_(a) as tx:
        tx.volunteer.cancel(shift.id)
    names = recorder.names()
    assert names.count("approved") == 2  # A and B (the coordinator has no profile)
    assert names[-4:] == ["signed_up", "signed_up", "cancelled", "promoted"]
    promoted = next(e for n, e in recorder.events if n == "promoted")
    assert promoted.user_id == b and promoted.status == "confirmed"
