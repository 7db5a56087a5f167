"""Accounts: identifiers, names, password rules, one account across organisations, isolation."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, AlreadyExists, Kit, NotFound, ValidationFailed
from ngo_kit.modules.registration.models import Account
from ngo_kit.modules.registration.passwords import Passwords, common_passwords
from ngo_kit.modules.registration.schemas import UserRead
from ngo_kit.modules.registration.testing import PASSWORD, Register
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, SQLiteLockProbe, run_together


def test_register_creates_an_account_and_a_member_membership(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org", display_name="Ana")
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        user = tx.registration.get_user(uid)
        assert tx.tenancy.member(uid).role == "member"
    assert user.email == "ana@example.org"
    assert user.display_name == "Ana"
    assert user.status == "pending"
    assert user.created_at.tzinfo is not None


def test_email_is_normalised_including_international_domains(
    register: Register, rkit: Kit, rorg: OrgRead
) -> None:
    uid = register(email="  Wang.Fang@XN--FIQS8S.CN ")
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        assert tx.registration.get_user(uid).email == "wang.fang@中国.cn"
    with pytest.raises(AlreadyExists), rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.register(email="wang.fang@中国.CN", display_name="X", password=PASSWORD)


def test_phone_is_stored_in_e164_using_the_organisation_region(
    register: Register, rkit: Kit, rorg: OrgRead
) -> None:
    uid = register(phone="138 0013 8000", email=None)
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        assert tx.registration.get_user(uid).phone == "+8613800138000"


def test_phone_that_is_not_a_mobile_number_is_refused(rkit: Kit, rorg: OrgRead) -> None:
    with pytest.raises(ValidationFailed) as info, rkit.begin(org=rorg) as tx:
        tx.registration.register(phone="12345", display_name="X", password=PASSWORD)
    assert (info.value.field, info.value.rule) == ("phone", "invalid_phone")


def test_an_email_or_a_phone_is_required(rkit: Kit, rorg: OrgRead) -> None:
    with pytest.raises(ValidationFailed) as info, rkit.begin(org=rorg) as tx:
        tx.registration.register(display_name="X", password=PASSWORD)
    assert (info.value.field, info.value.rule) == ("email", "identifier_required")


def test_display_name_accepts_chinese_and_refuses_blank(
    register: Register, rkit: Kit, rorg: OrgRead
) -> None:
    uid = register(email="li@example.org", display_name="李华 (Lǐ Huá)")
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        assert tx.registration.get_user(uid).display_name == "李华 (Lǐ Huá)"
    with pytest.raises(ValidationFailed) as info, rkit.begin(org=rorg) as tx:
        tx.registration.register(email="b@example.org", display_name="   ", password=PASSWORD)
    assert info.value.field == "display_name"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "password_too_short"),
        ("x" * 129, "password_too_long"),
        ("password123", "common_password"),
        ("QWERTYUIOP", "common_password"),
    ],
)
def test_password_rules_name_the_rule(rkit: Kit, rorg: OrgRead, password: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as info, rkit.begin(org=rorg) as tx:
        tx.registration.register(email="a@example.org", display_name="A", password=password)
    assert (info.value.field, info.value.rule) == ("password", rule)
    assert "common" in info.value.message if rule == "common_password" else True


def test_long_passwords_are_not_truncated_and_have_no_composition_rules(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    long_pw = "密" * 100 + "a" * 28  # 128 code points, 328 bytes: beyond bcrypt's 72
    register(email="a@example.org", password=long_pw)
    with rkit.begin(org=rorg) as tx:
        assert tx.registration.authenticate(email="a@example.org", password=long_pw)
    with pytest.raises(Exception, match="not right"), rkit.begin(org=rorg) as tx:
        tx.registration.authenticate(email="a@example.org", password=long_pw[:-1] + "b")
    register(email="b@example.org", password="aaaaaaaabbbbbbbbzz")


def test_the_common_password_list_holds_at_least_ten_thousand() -> None:
    assert len(common_passwords()) >= 10_000


def test_whitespace_in_passwords_is_kept(rkit: Kit, rorg: OrgRead, register: Register) -> None:
    register(email="a@example.org", password="  spaced out secret  ")
    with rkit.begin(org=rorg) as tx:
        assert tx.registration.authenticate(email="a@example.org", password="  spaced out secret  ")
    with pytest.raises(Exception, match="not right"), rkit.begin(org=rorg) as tx:
        tx.registration.authenticate(email="a@example.org", password="spaced out secret")


def test_without_enumeration_prevention_a_taken_email_without_its_password_is_refused(
    explicit_registration: None, rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    register(email="ana@example.org")
    with pytest.raises(AlreadyExists), rkit.begin(org=rother) as tx:
        tx.registration.register(
            email="ana@example.org", display_name="Eve", password="eve's guess!"
        )


def test_without_enumeration_prevention_an_account_joins_a_second_organisation_with_its_password(
    explicit_registration: None, rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    uid2 = register(org=rother, email="ana@example.org")
    assert uid == uid2
    with pytest.raises(AlreadyExists), rkit.begin(org=rother) as tx:
        tx.registration.register(email="ana@example.org", display_name="A", password=PASSWORD)
    with rkit.begin(org=rother, actor=SYSTEM) as tx:
        assert tx.registration.get_user(uid).email == "ana@example.org"


def test_get_user_is_not_found_for_another_organisations_member(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org")
    with pytest.raises(NotFound), rkit.begin(org=rother, actor=SYSTEM) as tx:
        tx.registration.get_user(uid)
    with pytest.raises(NotFound), rkit.begin(org=rother, actor=SYSTEM) as tx:
        tx.registration.get_user("not-a-uuid")
    with rkit.begin(org=rother, actor=SYSTEM) as tx:
        assert tx.registration.users([uid, uuid.uuid4()]) == {}
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        assert set(tx.registration.users([uid, uuid.uuid4()])) == {uid}


def test_contact_details_are_hidden_from_members_without_members_view(
    rkit: Kit, rorg: OrgRead, register: Register
) -> None:
    ana = register(email="ana@example.org", display_name="Ana")
    bo = register(email="bo@example.org", display_name="Bo")
    with rkit.begin(org=rorg, actor=bo) as tx:
        seen = tx.registration.get_user(ana)
        own = tx.registration.get_user(bo)
    assert (seen.display_name, seen.email) == ("Ana", None)
    assert own.email == "bo@example.org"


def test_members_needs_members_view(
    rkit: Kit, rorg: OrgRead, register: Register, admin: uuid.UUID
) -> None:
    from ngo_kit import PermissionDenied

    uid = register(email="ana@example.org")
    with pytest.raises(PermissionDenied), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.members()
    with rkit.begin(org=rorg, actor=admin) as tx:
        assert {u.id for u in tx.registration.members()} == {uid, admin}
        assert tx.registration.find_user(email="ANA@example.org").id == uid


@pytest.mark.parametrize("prevention", [True, False], ids=["prevention", "explicit"])
def test_concurrent_registrations_of_one_email_give_exactly_one_account(
    monkeypatch: pytest.MonkeyPatch, kit_factory: KitFactory, prevention: bool
) -> None:
    monkeypatch.setenv("NGO_KIT_REGISTRATION_PREVENT_ENUMERATION", str(prevention).lower())
    rkit = kit_factory(modules=["registration"])
    rorg = rkit.create_organisation("rainbow", "Rainbow")

    def attempt(n: int) -> uuid.UUID:
        with rkit.begin(org=rorg) as tx:
            user: UserRead = tx.registration.register(
                email="race@example.org", display_name=f"R{n}", password=PASSWORD
            )
        return user.id

    results = run_together(6, attempt)  # a lost race must still be an ngo-kit error
    ids = [r for r in results if isinstance(r, uuid.UUID)]
    if prevention:  # every caller gets a new sign-up's answer; one id names the account
        assert len(ids) == 6, results
    else:
        assert len(ids) == 1, results
        assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, uuid.UUID))
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        count = tx.session.scalar(
            sa.select(sa.func.count()).where(Account.email == "race@example.org")
        )
    assert count == 1


def test_on_sqlite_a_sign_up_hashes_before_it_takes_the_write_lock(
    rkit: Kit, rorg: OrgRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The argon2id work (about 20 ms) must not queue every other writer behind it."""
    if rkit.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    probe = SQLiteLockProbe(rkit)
    lock_free_while_hashing: list[bool] = []
    hash_password = Passwords.hash

    def hash_and_probe(self: Passwords, password: str) -> str:
        lock_free_while_hashing.append(probe.free())
        return hash_password(self, password)

    monkeypatch.setattr(Passwords, "hash", hash_and_probe)
    with rkit.begin(org=rorg) as tx:
        user = tx.registration.register(
            email="lin@example.org", display_name="Lin", password=PASSWORD
        )
        assert not probe.free()  # the sign-up's writes hold it now
    probe.close()
    assert lock_free_while_hashing == [True]
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        assert tx.registration.get_user(user.id).email == "lin@example.org"
