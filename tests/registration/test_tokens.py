"""Signed tokens: each way a token goes wrong is refused with its own error; keys rotate."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pydantic import SecretStr

from ngo_kit import Kit, TokenExpired, TokenTampered, TokenUsed, TokenWrongPurpose
from ngo_kit.modules.registration.testing import PASSWORD, Register, last_data
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, MessageCatcher
from ngo_kit.tokens import TokenSigner, tokens_for


def test_a_token_round_trips_its_data() -> None:
    signer = TokenSigner([SecretStr("new"), SecretStr("old")])
    token = signer.sign("certificate", {"id": "42"})
    assert signer.load("certificate", token, max_age=60) == {"id": "42"}


def test_a_tampered_token_is_refused_as_tampered() -> None:
    signer = TokenSigner(["secret"])
    token = signer.sign("certificate", {"id": "42"})
    body, sig = token.rsplit(".", 1)
    altered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    with pytest.raises(TokenTampered):
        signer.load("certificate", altered, max_age=60)
    with pytest.raises(TokenTampered):
        signer.load("certificate", "not a token at all", max_age=60)


def test_a_token_signed_with_an_unknown_key_is_tampered() -> None:
    token = TokenSigner(["attacker"]).sign("certificate", 1)
    with pytest.raises(TokenTampered):
        TokenSigner(["secret"]).load("certificate", token, max_age=60)


def test_an_expired_token_is_refused_as_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TokenSigner(["secret"])
    past = dt.datetime.now(dt.UTC).timestamp() - 3600
    monkeypatch.setattr(time, "time", lambda: past)
    token = signer.sign("reset", {"a": 1})
    monkeypatch.undo()
    with pytest.raises(TokenExpired):
        signer.load("reset", token, max_age=dt.timedelta(minutes=30))
    assert signer.load("reset", token, max_age=7200) == {"a": 1}


def test_a_token_of_another_purpose_is_refused_as_wrong_purpose() -> None:
    signer = TokenSigner(["secret"])
    token = signer.sign("registration.password-reset", {"a": 1})
    with pytest.raises(TokenWrongPurpose):
        signer.load("registration.invitation", token, max_age=60)


def test_rotation_accepts_tokens_signed_with_an_older_secret() -> None:
    old = TokenSigner(["old-secret"]).sign("certificate", "x")
    rotated = TokenSigner(["new-secret", "old-secret"])
    assert rotated.load("certificate", old, max_age=60) == "x"
    new = rotated.sign("certificate", "y")
    with pytest.raises(TokenTampered):
        TokenSigner(["old-secret"]).load("certificate", new, max_age=60)
    assert TokenSigner(["new-secret"]).load("certificate", new, max_age=60) == "y"


def test_kit_signer_uses_the_settings_secret_keys(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["registration"], secret_keys=["k2", "k1"])
    token = TokenSigner(["k1"]).sign("p", 1)
    assert tokens_for(kit).load("p", token, max_age=60) == 1
    assert tokens_for(kit) is tokens_for(kit)


def test_a_verification_link_is_refused_once_used(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(email="ana@example.org")
    token = last_data(message_catcher, "ana@example.org", "token")
    with rkit.begin(org=rorg) as tx:
        user = tx.registration.verify_email(token)
    assert user.email_verified and user.status == "active"
    with pytest.raises(TokenUsed), rkit.begin(org=rorg) as tx:
        tx.registration.verify_email(token)


def test_a_reset_token_is_refused_as_a_verification_link(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    register(email="ana@example.org")
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_password_reset(email="ana@example.org")
    rkit.outbox.work()
    reset = last_data(message_catcher, "ana@example.org", "token")
    with pytest.raises(TokenWrongPurpose), rkit.begin(org=rorg) as tx:
        tx.registration.verify_email(reset)


def test_a_reset_token_dies_after_use_and_after_any_password_change(
    rkit: Kit, rorg: OrgRead, register: Register, message_catcher: MessageCatcher
) -> None:
    uid = register(email="ana@example.org")
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_password_reset(email="ana@example.org")
        tx.registration.request_password_reset(email="ana@example.org")
    rkit.outbox.work()
    first, second = [
        m.data["token"] for m in message_catcher.to("ana@example.org") if "token" in m.data
    ][-2:]
    with rkit.begin(org=rorg) as tx:
        tx.registration.reset_password(first, "a brand new secret")
    for token in (first, second):
        with pytest.raises(TokenUsed), rkit.begin(org=rorg) as tx:
            tx.registration.reset_password(token, "another new secret")
    with rkit.begin(org=rorg) as tx:
        signed = tx.registration.authenticate(
            email="ana@example.org", password="a brand new secret"
        )
    assert signed.user.id == uid


def test_an_expired_reset_token_is_refused(
    rkit: Kit,
    rorg: OrgRead,
    register: Register,
    message_catcher: MessageCatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(email="ana@example.org")
    past = dt.datetime.now(dt.UTC).timestamp() - 31 * 60
    monkeypatch.setattr(time, "time", lambda: past)
    with rkit.begin(org=rorg) as tx:
        tx.registration.request_password_reset(email="ana@example.org")
    rkit.outbox.work()
    monkeypatch.undo()
    token = last_data(message_catcher, "ana@example.org", "token")
    with pytest.raises(TokenExpired), rkit.begin(org=rorg) as tx:
        tx.registration.reset_password(token, "a brand new secret")
    with rkit.begin(org=rorg) as tx:
        assert tx.registration.authenticate(email="ana@example.org", password=PASSWORD)
