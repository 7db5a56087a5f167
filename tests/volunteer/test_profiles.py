"""Profiles: skills from the organisation's list, certifications, custom fields, status."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from volunteer_helpers import World

from ngo_kit import AlreadyExists, ValidationFailed
from ngo_kit.modules.volunteer import WrongState


def test_profile_keeps_what_the_volunteer_gave(world: World) -> None:
    person = world.person(
        skills={"first_aid": 4},
        languages=["zh", "en"],
        city="上海",
        district="徐汇区",
        latitude="31.1880",
        longitude="121.4365",
        availability=[{"weekday": 5, "start": "09:00", "end": "17:00"}],
        unavailable_dates=["2030-01-01"],
        emergency_contact_name="王芳",
        emergency_contact_phone="+8613800000000",
        certifications={"first_aid": "2031-01-01"},
    )
    with world.as_(person) as tx:
        profile = tx.volunteer.profile()
    assert profile.status == "approved" and profile.skills == {"first_aid": 4}
    assert profile.certifications == {"first_aid": dt.date(2031, 1, 1)}
    assert profile.latitude == Decimal("31.1880") and profile.district == "徐汇区"
    assert profile.unavailable_dates == [dt.date(2030, 1, 1)]
    assert profile.emergency_contact_name == "王芳"


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"skills": {"juggling": 2}}, "skills", "unknown_skill"),
        ({"skills": {"first_aid": 9}}, "skills", "less_than_equal"),
        ({"skills": {"Bad Code": 1}}, "skills", "invalid_skill_code"),
        (
            {"availability": [{"weekday": 1, "start": "18:00", "end": "09:00"}]},
            "availability.0.end",
            "invalid_time_window",
        ),
        ({"latitude": "95"}, "latitude", "less_than_equal"),
        ({"city": "a\nb"}, "city", "control_characters"),
        ({"custom_fields": {"tshirt": "L"}}, "custom_fields.tshirt", "extra_forbidden"),
    ],
)
def test_bad_profiles_are_refused_naming_field_and_rule(
    world: World, fields: dict[str, object], field: str, rule: str
) -> None:
    person = world.person(profile=False)
    with pytest.raises(ValidationFailed) as info, world.as_(person) as tx:
        tx.volunteer.save_profile(user_id=person, **fields)
    assert (info.value.field, info.value.rule) == (field, rule)


def test_custom_fields_use_the_registration_field_mechanism(world: World) -> None:
    with world.as_() as tx:
        tx.registration.define_field(
            form="volunteer",
            name="tshirt",
            label_en="T-shirt size",
            kind="choice",
            choices=["S", "M", "L"],
        )
    person = world.person(custom_fields={"tshirt": "L"})
    with world.as_(person) as tx:
        assert tx.volunteer.profile().custom_fields == {"tshirt": "L"}
    with pytest.raises(ValidationFailed) as info, world.as_(person) as tx:
        tx.volunteer.save_profile(user_id=person, custom_fields={"tshirt": "XXL"})
    assert info.value.field == "custom_fields.tshirt"


def test_approve_moves_an_applicant_once(world: World) -> None:
    person = world.person(approve=False)
    with world.as_(world.coordinator) as tx:
        assert tx.volunteer.profile(person).status == "applicant"
        assert tx.volunteer.approve(person).approved_at is not None
        with pytest.raises(WrongState):
            tx.volunteer.approve(person)


def test_a_skill_is_listed_once(world: World) -> None:
    with pytest.raises(AlreadyExists), world.as_() as tx:
        tx.volunteer.add_skill("driving", "Driving again")
    with world.as_() as tx:
        assert [s.code for s in tx.volunteer.skills()] == ["driving", "first_aid", "knitting"]
