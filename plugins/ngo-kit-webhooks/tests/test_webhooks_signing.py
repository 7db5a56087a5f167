"""Signatures: HMAC-SHA256 over timestamp and body, verified in constant time with a tolerance."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st
from ngo_kit_webhooks import sign, verify_signature
from ngo_kit_webhooks.signing import compute_signature

SECRET = "whsec_test-secret"
BODY = '{"event":"points_awarded","data":{"reason":"服务"}}'.encode()
NOW = 1_780_000_000


def test_a_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=NOW)


def test_a_tampered_body_or_timestamp_or_another_secret_fails() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    assert not verify_signature(SECRET, header, BODY + b" ", now=NOW)
    assert not verify_signature("whsec_other", header, BODY, now=NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")
    assert not verify_signature(SECRET, moved, BODY, now=NOW)


def test_old_and_future_signatures_are_refused_outside_the_tolerance() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    assert verify_signature(SECRET, header, BODY, tolerance=300, now=NOW + 300)
    assert not verify_signature(SECRET, header, BODY, tolerance=300, now=NOW + 301)
    assert not verify_signature(SECRET, header, BODY, tolerance=300, now=NOW - 301)
    assert verify_signature(SECRET, header, BODY, tolerance=3600, now=NOW + 3000)


def test_signing_now_verifies_now() -> None:
    assert verify_signature(SECRET, sign(SECRET, BODY), BODY)


def test_one_matching_signature_among_several_is_enough() -> None:
    good = compute_signature(SECRET, NOW, BODY)
    header = f"t={NOW},v1={'0' * 64},v1={good}"
    assert verify_signature(SECRET, header, BODY, now=NOW)


def test_malformed_headers_are_refused_without_raising() -> None:
    good = compute_signature(SECRET, NOW, BODY)
    for header in (
        None,
        "",
        good,
        f"v1={good}",
        f"t={NOW}",
        f"t=soon,v1={good}",
        f"t={NOW},v0={good}",
        f"t={NOW},v1=签名",
        "t=,v1=",
        ",,,",
    ):
        assert not verify_signature(SECRET, header, BODY, now=NOW), header


@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0, max_value=199))
def test_any_changed_byte_breaks_the_signature(body: bytes, flip: int) -> None:
    header = sign(SECRET, body, timestamp=NOW)
    assert verify_signature(SECRET, header, body, now=NOW)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        assert not verify_signature(SECRET, header, changed, now=NOW)
