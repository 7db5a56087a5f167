"""Changing email and phone needs the new identifier proved; start-up checks; every service
method keeps to its organisation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ngo_kit import (
    SYSTEM,
    ConfigurationError,
    Kit,
    NotFound,
    PermissionDenied,
    TokenInvalid,
    TokenUsed,
)
from ngo_kit.modules.registration.service import RegistrationService
from ngo_kit.modules.registration.testing import PASSWORD, Register, last_data
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, MessageCatcher, settings_for_tests


def test_email_change_switches_only_once_the_new_address_is_proved(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(email="old@example.org")
    register(email="taken@example.org")
    with rkit.begin(org=rorg, actor=uid) as tx:  # the same answer as for a free address
        tx.registration.request_email_change("taken@example.org")
    assert not message_catcher.to("taken@example.org")[1:]  # left to the worker
    rkit.outbox.work()
    [_verify, told] = message_catcher.to("taken@example.org")
    assert told.data["purpose"] == "registration.change-taken" and "token" not in told.data
    with rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.request_email_change("New@Example.org")
        assert tx.registration.get_user(uid).email == "old@example.org"
    rkit.outbox.work()
    assert message_catcher.to("old@example.org")[-1].subject.startswith("Your email address")
    token = last_data(message_catcher, "new@example.org", "token")
    with rkit.begin(org=rorg) as tx:
        user = tx.registration.confirm_email_change(token)
    assert (user.email, user.email_verified, user.status) == ("new@example.org", True, "active")
    assert message_catcher.to("old@example.org")[-1].subject == "Your email address was changed"
    with pytest.raises(TokenUsed), rkit.begin(org=rorg) as tx:
        tx.registration.confirm_email_change(token)
    with rkit.begin() as tx:
        tx.registration.authenticate(email="new@example.org", password=PASSWORD)


def test_phone_change_switches_with_the_code_sent_to_the_new_number(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(email="a@example.org", phone="13800138000")
    with rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.request_phone_change("139 1000 0000")
    rkit.outbox.work()
    code = last_data(message_catcher, "+8613910000000", "code")
    with pytest.raises(TokenInvalid), rkit.begin(org=rorg, actor=uid) as tx:
        tx.registration.confirm_phone_change("000000" if code != "000000" else "111111")
    with rkit.begin(org=rorg, actor=uid) as tx:
        user = tx.registration.confirm_phone_change(code)
    assert (user.phone, user.phone_verified) == ("+8613910000000", True)
    assert message_catcher.to("+8613800138000")[-1].subject == "Number changed"
    with pytest.raises(PermissionDenied), rkit.begin(org=rorg) as tx:
        tx.registration.request_phone_change("13911112222")


def test_production_refuses_to_start_with_only_the_console_channel(
    empty_database_url: str,
) -> None:
    settings = settings_for_tests(
        empty_database_url, environment="production", secret_keys=["a-real-secret"]
    )
    with pytest.raises(ConfigurationError) as info:
        Kit(settings=settings, modules=["registration"], autoload=False)
    assert info.value.check == "core.E007"
    assert "registration" in str(info.value)


def test_production_refuses_argon2_parameters_below_owasp(
    kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Sms:
        ngo_kit_plugin_name = "sms"

        from ngo_kit import hookimpl as _hookimpl

        @_hookimpl
        def ngo_kit_register_channels(self, register: object) -> None:
            from ngo_kit import Channel

            register(Channel("sms"))  # type: ignore[operator]

    monkeypatch.setenv("NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB", "1024")
    with pytest.raises(ConfigurationError) as info:  # the kit is refused as it is built
        kit_factory(modules=["registration"], plugins=[Sms()], environment="production")
    assert info.value.check == "registration.E001"
    kit_factory(modules=["points"], plugins=[Sms()], environment="production")  # not enabled


def test_every_service_method_keeps_to_its_organisation(
    rkit: Kit, rorg: OrgRead, rother: OrgRead, register: Register
) -> None:
    uid = register(email="ana@example.org", consents=[])
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        tx.registration.define_field(name="motto", kind="text")
        tx.registration.save_field_values({"motto": "hello"}, user_id=uid)
        tx.registration.publish_consent(purpose="photos", title="Photos", body="...")
        tx.registration.give_consent("photos", user_id=uid)
        invitation = tx.registration.invite(email="x@example.org")
    request_org = rkit.create_organisation("careful", "Careful", settings={"joining": "approval"})
    with rkit.begin(org=request_org, actor=uid) as tx:
        request = tx.registration.request_to_join()
    with rkit.begin(org=rother, actor=SYSTEM) as tx:
        r: RegistrationService = tx.registration
        calls: tuple[Callable[[], object], ...] = (
            lambda: r.get_user(uid),
            lambda: r.export_personal_data(uid),
            lambda: r.remove_member(uid),
            lambda: r.set_role(uid, "admin"),
            lambda: r.revoke_invitation(invitation.id),
            lambda: r.approve_join(request.id),
            lambda: r.reject_join(request.id),
            lambda: r.give_consent("photos", user_id=uid),
            lambda: r.save_field_values({"motto": "x"}, user_id=uid),
            lambda: r.remove_field("registration", "motto"),
        )
        for call in calls:
            with pytest.raises(NotFound):
                call()
        assert r.users([uid]) == {}
        assert r.field_values(uid) == {}
        assert r.consents(uid) == []
        assert r.fields() == []
        assert r.consent_documents() == []
        assert r.invitations() == []
        assert r.join_requests() == []
        assert uid not in {u.id for u in r.members()}
