"""Emailed links point at the app's own pages when it gives templates (``LINK_TEMPLATES``)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from ngo_kit import SYSTEM, ConfigurationError
from ngo_kit.modules.registration.service import (
    PURPOSE_CHANGE_EMAIL,
    PURPOSE_INVITATION,
    PURPOSE_RESET,
    PURPOSE_VERIFY_EMAIL,
)
from ngo_kit.modules.registration.testing import PASSWORD, KitWithAna
from ngo_kit.testing import KitFactory, MessageCatcher

TEMPLATES = {
    "verify_email": "https://app.example.org/o/{org}/verify-email?token={token}",
    "invitation": "https://app.example.org/o/{org}/join?token={token}",
}


def test_emails_carry_the_apps_link_and_the_link_verifies(
    kit_with_ana: KitWithAna, message_catcher: MessageCatcher
) -> None:
    kit, org, _ana = kit_with_ana(LINK_TEMPLATES=json.dumps(TEMPLATES))
    [message] = [m for m in message_catcher.to("ana@example.org") if "token" in m.data]
    url = message.body.rsplit(" ", 1)[-1]
    assert url.startswith("https://app.example.org/o/rainbow/verify-email?token=")
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert token == message.data["token"]  # URL-quoted in the link, whole once parsed
    with kit.begin(org=org) as tx:
        assert tx.registration.verify_email(token).email_verified
    with kit.begin(org=org, actor=SYSTEM) as tx:  # a kind without a template: the bare token
        tx.registration.request_password_reset(email="ana@example.org")
    kit.outbox.work()
    reset = [m for m in message_catcher.to("ana@example.org") if "token" in m.data][-1]
    assert reset.body.endswith(f": {reset.data['token']}")


@pytest.mark.parametrize(
    "templates",
    [{"verify": "https://x/{token}"}, {"verify_email": "https://x/"}, {"invitation": "{tokn}"}],
    ids=["unknown kind", "no token", "unknown placeholder"],
)
def test_a_malformed_template_stops_the_kit_at_start_up_with_a_clear_error(
    kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch, templates: dict[str, str]
) -> None:
    monkeypatch.setenv("NGO_KIT_REGISTRATION_LINK_TEMPLATES", json.dumps(templates))
    with pytest.raises(ConfigurationError) as info:
        kit_factory(modules=["registration"])
    assert info.value.check == "registration.E003"
    assert "NGO_KIT_REGISTRATION_LINK_TEMPLATES" in str(info.value)


EVERY_KIND = {
    "verify_email": "https://app.example.org/o/{org}/verify-email?token={token}",
    "reset_password": "https://app.example.org/reset?org={org}&token={token}",
    "change_email": "https://app.example.org/o/{org}/confirm-email?token={token}",
    "invitation": "https://app.example.org/o/{org}/join?token={token}",
}


def _link_of(message_catcher: MessageCatcher, to: str, purpose: str) -> tuple[str, str]:
    [message] = [m for m in message_catcher.to(to) if m.data.get("purpose") == purpose]
    return message.body.rsplit(" ", 1)[-1], str(message.data["token"])


def test_every_kind_of_link_follows_its_template_and_carries_a_token_that_works(
    kit_with_ana: KitWithAna, message_catcher: MessageCatcher
) -> None:
    kit, org, ana = kit_with_ana(LINK_TEMPLATES=json.dumps(EVERY_KIND))
    with kit.begin() as tx:  # no organisation: {org} is left empty
        tx.registration.request_password_reset(email="ana@example.org")
    kit.outbox.work()
    with kit.begin(org=org, actor=ana.id) as tx:
        tx.registration.request_email_change("ana.new@example.org")
    kit.outbox.work()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.invite(email="bo@example.org")

    def expect(kind: str, to: str, purpose: str, org_slug: str) -> str:
        url, token = _link_of(message_catcher, to, purpose)
        assert url == EVERY_KIND[kind].format(org=org_slug, token=quote(token, safe=""))
        query = parse_qs(urlsplit(url).query)
        assert query["token"] == [token]
        return token

    expect("verify_email", "ana@example.org", PURPOSE_VERIFY_EMAIL, "rainbow")
    reset = expect("reset_password", "ana@example.org", PURPOSE_RESET, "")
    change = expect("change_email", "ana.new@example.org", PURPOSE_CHANGE_EMAIL, "rainbow")
    invitation = expect("invitation", "bo@example.org", PURPOSE_INVITATION, "rainbow")
    with kit.begin(org=org, actor=ana.id) as tx:  # each token does its job
        assert tx.registration.confirm_email_change(change).email == "ana.new@example.org"
    with kit.begin() as tx:
        tx.registration.reset_password(reset, "a-new-and-long-password-7")
    with kit.begin(org=org) as tx:
        bo = tx.registration.register(
            email="bo@example.org", password=PASSWORD, display_name="Bo", invitation=invitation
        )
    kit.outbox.work()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        assert tx.tenancy.member(bo.id).role == "member"
