"""Organisations, roles and memberships: one organisation never sees another's."""

from __future__ import annotations

import uuid

import pytest

from ngo_kit import SYSTEM, AlreadyExists, Kit, NotFound, PermissionDenied, ValidationFailed
from ngo_kit.tenancy import OrgRead


def test_new_organisation_has_the_default_roles(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org, actor=SYSTEM) as t:
        names = {r.name for r in t.tenancy.roles()}
    assert names == {"owner", "admin", "staff", "volunteer", "member"}


def test_slug_is_unique(kit: Kit, org: OrgRead) -> None:
    with pytest.raises(AlreadyExists):
        kit.create_organisation(org.slug, "Again")


def test_only_the_system_actor_creates_organisations(kit: Kit) -> None:
    with pytest.raises(PermissionDenied), kit.begin(actor=uuid.uuid4()) as tx:
        tx.tenancy.create_organisation(slug="mine", name="Mine")


def test_a_member_of_one_organisation_is_not_found_in_another(
    kit: Kit, org: OrgRead, other_org: OrgRead
) -> None:
    person = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(person, "staff")
    with kit.begin(org=other_org, actor=SYSTEM) as tx:
        with pytest.raises(NotFound):
            tx.tenancy.member(person)
        assert tx.tenancy.members() == []
    with kit.begin(org=other_org, actor=person) as tx:
        assert not tx.can("members.view")  # staff there, nobody here


def test_role_changes_take_effect_and_are_audited(kit: Kit, org: OrgRead) -> None:
    person = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(person, "member")
    with kit.begin(org=org, actor=person) as tx:
        assert not tx.can("members.view")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.tenancy.set_role(person, "staff").role == "staff"
    with kit.begin(org=org, actor=person) as tx:
        assert tx.can("members.view")
    assert kit.verify() == []


def test_custom_roles_and_grants(kit: Kit, org: OrgRead) -> None:
    person = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.create_role("auditor", "Auditor", ("audit.view",))
        tx.tenancy.add_member(person, "auditor")
        with pytest.raises(ValidationFailed) as info:
            tx.tenancy.grant("auditor", "audit.veiw")
        assert info.value.rule == "unknown_permission"
    with kit.begin(org=org, actor=person) as tx:
        assert tx.can("audit.view") and not tx.can("org.manage")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.revoke("auditor", "audit.view")
    with kit.begin(org=org, actor=person) as tx:
        assert not tx.can("audit.view")


def test_the_last_owner_cannot_leave_or_be_demoted(kit: Kit) -> None:
    owner = uuid.uuid4()
    org = kit.create_organisation("solo", "Solo", owner=owner)
    with kit.begin(org=org, actor=owner) as tx, pytest.raises(ValidationFailed) as info:
        tx.tenancy.remove_member(owner)
    assert info.value.rule == "last_owner"
    with kit.begin(org=org, actor=owner) as tx, pytest.raises(ValidationFailed):
        tx.tenancy.set_role(owner, "member")


def test_a_member_may_leave_without_rights(kit: Kit, org: OrgRead) -> None:
    person = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(person)
    with kit.begin(org=org, actor=person) as tx:
        tx.tenancy.remove_member(person)
    with kit.begin(org=org, actor=SYSTEM) as tx, pytest.raises(NotFound):
        tx.tenancy.member(person)


def test_checking_an_undeclared_permission_is_a_configuration_error(kit: Kit, org: OrgRead) -> None:
    from ngo_kit import ConfigurationError

    with kit.begin(org=org, actor=SYSTEM) as tx, pytest.raises(ConfigurationError) as info:
        tx.require("org.manaeg")
    assert info.value.check == "core.E006"


def test_update_organisation_changes_locale_and_zone(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        updated = tx.tenancy.update_organisation(locale="zh-CN", timezone="Asia/Shanghai")
    assert (updated.locale, updated.timezone) == ("zh_CN", "Asia/Shanghai")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.locale == "zh_CN"
        with pytest.raises(ValidationFailed) as info:
            tx.tenancy.update_organisation(timezone="Nowhere/Land")
        assert info.value.field == "timezone"


def test_list_organisations_shows_only_the_actors(
    kit: Kit, org: OrgRead, other_org: OrgRead
) -> None:
    person = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.tenancy.add_member(person)
    with kit.begin(actor=person) as tx:
        assert [o.slug for o in tx.tenancy.list_organisations()] == [org.slug]
    with kit.begin(actor=SYSTEM) as tx:
        assert {o.slug for o in tx.tenancy.list_organisations()} == {org.slug, other_org.slug}
