"""Activities and shifts: time zones, roles, bulk and recurring creation, cloning."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from volunteer_helpers import World

from ngo_kit import ValidationFailed

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def test_naive_times_are_read_in_the_organisation_time_zone(world: World) -> None:
    with world.as_() as tx:
        shift = tx.volunteer.create_shift(
            activity_id=world.activity_id,
            starts_at=dt.datetime(2030, 5, 4, 9, 0),
            ends_at=dt.datetime(2030, 5, 4, 12, 0),
            capacity=3,
        )
    assert shift.starts_at == dt.datetime(2030, 5, 4, 1, 0, tzinfo=dt.UTC)
    assert shift.hours == 3


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"ends_at": dt.datetime(2030, 5, 4, 8, 0)}, "ends_at", "ends_before_start"),
        ({"capacity": None}, "capacity", "missing"),
        (
            {"capacity": 5, "roles": [{"name": "driver", "capacity": 2}]},
            "capacity",
            "capacity_mismatch",
        ),
        ({"required_skills": ["Not Valid"]}, "required_skills", "invalid_skill_code"),
        ({"capacity": 0}, "capacity", "greater_than_equal"),
    ],
)
def test_bad_shifts_are_refused(
    world: World, fields: dict[str, object], field: str, rule: str
) -> None:
    values: dict[str, object] = {
        "activity_id": world.activity_id,
        "starts_at": dt.datetime(2030, 5, 4, 9, 0),
        "ends_at": dt.datetime(2030, 5, 4, 12, 0),
        "capacity": 3,
    }
    values.update(fields)
    with pytest.raises(ValidationFailed) as info, world.as_() as tx:
        tx.volunteer.create_shift(values)
    assert (info.value.field, info.value.rule) == (field, rule)


def test_recurring_shifts_keep_local_time_and_duration(world: World) -> None:
    with world.as_() as tx:
        shifts = tx.volunteer.create_recurring_shifts(
            first={
                "activity_id": world.activity_id,
                "starts_at": dt.datetime(2030, 3, 2, 9, 30),  # a Saturday
                "ends_at": dt.datetime(2030, 3, 2, 12, 0),
                "capacity": 4,
                "roles": [],
            },
            rule="FREQ=WEEKLY;BYDAY=SA;COUNT=6",
        )
    assert len(shifts) == 6
    local = [s.starts_at.astimezone(SHANGHAI) for s in shifts]
    assert all(t.weekday() == 5 and (t.hour, t.minute) == (9, 30) for t in local)
    assert [(t - local[0]).days for t in local] == [0, 7, 14, 21, 28, 35]
    assert all(s.hours == 2.5 and s.capacity == 4 for s in shifts)


def test_recurring_shifts_refuse_a_bad_rule_or_too_many(world: World) -> None:
    first = {
        "activity_id": world.activity_id,
        "starts_at": dt.datetime(2030, 3, 2, 9, 0),
        "ends_at": dt.datetime(2030, 3, 2, 10, 0),
        "capacity": 1,
    }
    with pytest.raises(ValidationFailed) as info, world.as_() as tx:
        tx.volunteer.create_recurring_shifts(first=first, rule="FREQ=SOMETIMES")
    assert info.value.rule == "invalid_rrule"
    with pytest.raises(ValidationFailed) as info, world.as_() as tx:
        tx.volunteer.create_recurring_shifts(first=first, rule="FREQ=DAILY", limit=10)
    assert info.value.rule == "too_many_shifts"


def test_bulk_creation_and_cloning_an_activity(world: World) -> None:
    start = dt.datetime(2030, 6, 1, 9, 0)
    with world.as_() as tx:
        made = tx.volunteer.create_shifts(
            [
                {
                    "activity_id": world.activity_id,
                    "starts_at": start + dt.timedelta(days=d),
                    "ends_at": start + dt.timedelta(days=d, hours=2),
                    "roles": [{"name": "driver", "capacity": 2}, {"name": "packer", "capacity": 5}],
                    "required_certifications": ["first_aid"],
                }
                for d in range(3)
            ]
        )
        copy = tx.volunteer.clone_activity(
            world.activity_id, title="Food bank (July)", shift_offset=dt.timedelta(days=30)
        )
        copied = tx.volunteer.shifts(activity_id=copy.id)
    assert [s.capacity for s in made] == [7, 7, 7]
    assert copy.title == "Food bank (July)"
    assert [s.starts_at - dt.timedelta(days=30) for s in copied] == [s.starts_at for s in made]
    assert all([r.name for r in s.roles] == ["driver", "packer"] and s.taken == 0 for s in copied)
    assert all(s.required_certifications == ["first_aid"] for s in copied)
