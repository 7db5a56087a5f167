"""The browser tests read verification codes from what the console channel prints: the reader
must understand the channel's real output, or the story tests would only time out."""

from __future__ import annotations

import pytest
from e2e_support import parse_messages

from ngo_kit import SYSTEM
from ngo_kit.testing import KitFactory


def test_the_code_read_from_the_console_verifies_the_phone(
    kit_factory: KitFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = kit_factory(catch_messages=False)  # the console channel prints, as in relief_hub
    kit.create_organisation("rainbow", "Rainbow Charity")
    with kit.begin(org="rainbow", actor=SYSTEM) as tx:
        user = tx.registration.register(
            phone="+8613800138000", password="lantern-harbour-47", display_name="Mei"
        )
    printed = capsys.readouterr().out.splitlines()
    messages = [m for m in parse_messages(printed) if m.recipient == "+8613800138000"]
    assert [m.channel for m in messages] == ["sms"]
    code = messages[0].verification_code()
    assert code is not None, messages
    with kit.begin(org="rainbow", actor=user.id) as tx:
        assert tx.registration.verify_phone(code).phone_verified


def test_a_message_body_ends_where_the_server_logs_or_the_next_message_begins() -> None:
    printed = [
        "INFO:     Uvicorn running on http://127.0.0.1:41234",
        "[ngo-kit email -> mei@example.org] 验证码 Verification code",
        "Your code is 123456.",
        "It is valid for 10 minutes.",
        'INFO:     127.0.0.1:55123 - "POST /o/rainbow/register HTTP/1.1" 303 See Other',
        "[ngo-kit sms -> +8613800138000] Verification code",
        "Your verification code is 654321.",
    ]
    first, second = parse_messages(printed)
    assert (first.channel, first.recipient) == ("email", "mei@example.org")
    assert first.subject == "验证码 Verification code"
    assert first.body == "Your code is 123456.\nIt is valid for 10 minutes."
    assert first.verification_code() == "123456"
    assert (second.recipient, second.verification_code()) == ("+8613800138000", "654321")
