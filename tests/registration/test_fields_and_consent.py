"""Custom registration fields (data and plugins) and versioned consent with guardians."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ngo_kit import (
    SYSTEM,
    AlreadyExists,
    ConfigurationError,
    Kit,
    PermissionDenied,
    ValidationFailed,
    hookimpl,
)
from ngo_kit.modules.registration.schemas import FieldRead
from ngo_kit.modules.registration.testing import PASSWORD, Register
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory


@pytest.fixture
def form(rkit: Kit, rorg: OrgRead) -> None:
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        r = tx.registration
        r.define_field(
            name="district",
            kind="choice",
            choices=["东城", "西城"],
            required=True,
            label_en="District",
            label_zh="区",
        )
        r.define_field(name="skills", kind="multiple_choice", choices=["first_aid", "driving"])
        r.define_field(name="age_years", kind="number", min_value="0", max_value="120")
        r.define_field(name="available_from", kind="date", min_value="2020-01-01")
        r.define_field(name="emergency_phone", kind="phone")
        r.define_field(name="work_email", kind="email")
        r.define_field(name="has_car", kind="yes_no")
        r.define_field(name="motto", kind="text", max_length=20)
        r.define_field(name="story", kind="long_text")


def _register(kit: Kit, org: OrgRead, **extra: Any) -> Any:
    with kit.begin(org=org) as tx:
        return tx.registration.register(
            email="a@example.org", password=PASSWORD, display_name="A", **extra
        )


def test_custom_fields_are_validated_cleaned_and_stored(
    rkit: Kit, rorg: OrgRead, form: None
) -> None:
    user = _register(
        rkit,
        rorg,
        fields={
            "district": "东城",
            "skills": ["driving", "first_aid", "driving"],
            "age_years": "33",
            "available_from": "2024-05-01",
            "emergency_phone": "139 1000 0000",
            "work_email": "Me@Example.ORG",
            "has_car": "yes",
            "motto": "向前",
            "story": "line one\nline two",
        },
    )
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        stored = tx.registration.field_values(user.id)
    assert stored == {
        "district": "东城",
        "skills": ["driving", "first_aid"],
        "age_years": "33",
        "available_from": "2024-05-01",
        "emergency_phone": "+8613910000000",
        "work_email": "me@example.org",
        "has_car": True,
        "motto": "向前",
        "story": "line one\nline two",
    }


@pytest.mark.parametrize(
    ("values", "field", "rule"),
    [
        ({}, "fields.district", "missing"),
        ({"district": "南城"}, "fields.district", "literal_error"),
        ({"district": "东城", "skills": ["cooking"]}, "fields.skills.0", "literal_error"),
        ({"district": "东城", "age_years": "121"}, "fields.age_years", "less_than_equal"),
        ({"district": "东城", "age_years": "many"}, "fields.age_years", "decimal_parsing"),
        (
            {"district": "东城", "available_from": "2019-12-31"},
            "fields.available_from",
            "greater_than_equal",
        ),
        ({"district": "东城", "emergency_phone": "123"}, "fields.emergency_phone", "invalid_phone"),
        ({"district": "东城", "work_email": "nope"}, "fields.work_email", "invalid_email"),
        ({"district": "东城", "has_car": "perhaps"}, "fields.has_car", "bool_parsing"),
        ({"district": "东城", "motto": "x" * 21}, "fields.motto", "string_too_long"),
        ({"district": "东城", "motto": "a\tb"}, "fields.motto", "control_characters"),
        ({"district": "东城", "shoe_size": "42"}, "fields.shoe_size", "extra_forbidden"),
    ],
)
def test_field_errors_name_the_field_and_rule(
    rkit: Kit, rorg: OrgRead, form: None, values: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        _register(rkit, rorg, fields=values)
    assert (info.value.field, info.value.rule) == (field, rule)


def test_validate_fields_serves_other_forms_with_a_prefix(rkit: Kit, rorg: OrgRead) -> None:
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.define_field(
            form="volunteer_profile",
            name="tshirt",
            kind="choice",
            choices=["S", "M", "L"],
            required=True,
        )
        assert tx.registration.validate_fields("volunteer_profile", {"tshirt": "M"}) == {
            "tshirt": "M"
        }
        with pytest.raises(ValidationFailed) as info:
            tx.registration.validate_fields(
                "volunteer_profile", {"tshirt": "XXL"}, prefix="profile"
            )
    assert info.value.field == "profile.tshirt"


def test_defining_fields_needs_registration_manage_and_unique_names(
    rkit: Kit, rorg: OrgRead, register: Register, form: None
) -> None:
    uid = register(email="m@example.org", fields={"district": "西城"})
    with pytest.raises(PermissionDenied), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.define_field(name="x", kind="text")
    with pytest.raises(AlreadyExists), rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.define_field(name="district", kind="text")
    with pytest.raises(ValidationFailed) as info, rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.define_field(name="pick", kind="choice")
    assert (info.value.field, info.value.rule) == ("choices", "choices_required")
    with pytest.raises(ValidationFailed) as info, rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.define_field(name="when", kind="colour")
    assert (info.value.field, info.value.rule) == ("kind", "unknown_field_kind")


def test_fields_are_per_organisation(rkit: Kit, rorg: OrgRead, rother: OrgRead, form: None) -> None:
    with rkit.begin(org=rother, actor=SYSTEM) as tx:
        assert tx.registration.fields() == []
        with pytest.raises(ValidationFailed):
            tx.registration.validate_fields("registration", {"district": "东城"})


class ShoeSize:
    ngo_kit_plugin_name = "shoes"

    @hookimpl
    def ngo_kit_register_fields(self, register: Any) -> None:
        register(
            FieldRead(
                form="registration",
                name="shoe_size",
                kind="number",
                min_value="20",
                max_value="50",
                required=True,
                label_zh="鞋码",
            )
        )


def test_plugins_add_fields_through_the_collect_hook(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["registration"], plugins=[ShoeSize()])
    org = kit.create_organisation("rainbow", "Rainbow")
    with kit.begin(org=org) as tx:
        (field,) = tx.registration.fields()
        assert (field.name, field.source) == ("shoe_size", "shoes")
    with pytest.raises(ValidationFailed) as info:
        _register(kit, org)
    assert info.value.field == "fields.shoe_size"
    user = _register(kit, org, fields={"shoe_size": 38})
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.registration.field_values(user.id) == {"shoe_size": "38"}
        with pytest.raises(AlreadyExists):
            tx.registration.define_field(name="shoe_size", kind="text")


def test_a_plugin_registering_a_field_twice_is_named(kit_factory: KitFactory) -> None:
    class Again:
        ngo_kit_plugin_name = "again"

        @hookimpl
        def ngo_kit_register_fields(self, register: Any) -> None:
            register(FieldRead(form="registration", name="shoe_size", kind="text"))

    kit = kit_factory(modules=["registration"], plugins=[ShoeSize(), Again()])
    org = kit.create_organisation("rainbow", "Rainbow")
    with pytest.raises(ConfigurationError) as info, kit.begin(org=org) as tx:
        tx.registration.fields()
    assert "shoes" in str(info.value) and "again" in str(info.value)


# --- consent ------------------------------------------------------------------------------


@pytest.fixture
def policies(rkit: Kit, rorg: OrgRead) -> None:
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.publish_consent(
            purpose="privacy", title="Privacy v1", body="...", required=True
        )
        tx.registration.publish_consent(
            purpose="privacy", title="Privacy v2", body="...", required=True
        )
        tx.registration.publish_consent(purpose="photos", title="Photos", body="...")


def test_registration_records_the_current_version_when_and_how(
    rkit: Kit, rorg: OrgRead, policies: None
) -> None:
    user = _register(rkit, rorg, consents=["privacy"], consent_method="mini-program checkbox")
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        (consent,) = tx.registration.consents(user.id)
    assert (consent.purpose, consent.version, consent.method, consent.given_by) == (
        "privacy",
        2,
        "mini-program checkbox",
        "self",
    )
    assert consent.accepted_at.tzinfo is not None and consent.withdrawn_at is None


def test_required_consent_must_be_given_and_unknown_purposes_are_refused(
    rkit: Kit, rorg: OrgRead, policies: None
) -> None:
    with pytest.raises(ValidationFailed) as info:
        _register(rkit, rorg, consents=["photos"])
    assert (info.value.field, info.value.rule) == ("consents", "consent_required")
    with pytest.raises(ValidationFailed) as info:
        _register(rkit, rorg, consents=["privacy", "marketing"])
    assert info.value.rule == "unknown_consent"


def test_minors_need_a_guardian_whose_consent_is_recorded_separately(
    rkit: Kit, rorg: OrgRead, policies: None
) -> None:
    child = dt.date.today().replace(year=dt.date.today().year - 10)
    with pytest.raises(ValidationFailed) as info:
        _register(rkit, rorg, consents=["privacy"], birth_date=child)
    assert (info.value.field, info.value.rule) == ("guardian", "guardian_required")
    user = _register(
        rkit,
        rorg,
        consents=["privacy"],
        birth_date=child,
        guardian={"name": "王芳", "relationship": "mother"},
    )
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        given = [(c.given_by, c.purpose) for c in tx.registration.consents(user.id)]
    assert given == [("self", "privacy"), ("guardian", "privacy")] or sorted(given) == [
        ("guardian", "privacy"),
        ("self", "privacy"),
    ]


def test_adults_need_no_guardian(rkit: Kit, rorg: OrgRead, policies: None) -> None:
    adult = dt.date(1990, 1, 1)
    assert _register(rkit, rorg, consents=["privacy"], birth_date=adult).birth_date == adult


def test_consent_can_be_withdrawn_and_given_again(rkit: Kit, rorg: OrgRead, policies: None) -> None:
    user = _register(rkit, rorg, consents=["privacy", "photos"])
    with rkit.begin(org=rorg, actor=user.id) as tx:
        assert tx.registration.withdraw_consent("photos") == 1
        assert tx.registration.withdraw_consent("photos") == 0
        again = tx.registration.give_consent("photos", method="app settings")
    assert again.withdrawn_at is None and again.method == "app settings"
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        photos = [c for c in tx.registration.consents(user.id) if c.purpose == "photos"]
    assert [c.withdrawn_at is not None for c in photos] == [True, False]
