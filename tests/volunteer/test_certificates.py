"""Certificates of service hours: PDF, verification token, forgery and revocation."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from volunteer_helpers import World

from ngo_kit import NotFound, TokenTampered, TokenWrongPurpose


def _served(world: World) -> uuid.UUID:
    person = world.person("张小明")
    with world.as_(world.coordinator) as tx:
        tx.volunteer.record_hours(person, "12.5", served_on=dt.date(2026, 3, 1))
        tx.volunteer.record_hours(person, "4", served_on=dt.date(2026, 9, 1))
    return person


def test_a_certificate_states_the_net_hours_of_its_period(world: World) -> None:
    person = _served(world)
    with world.as_(world.coordinator) as tx:
        whole = tx.volunteer.issue_certificate(person)
        spring = tx.volunteer.issue_certificate(
            person, period_from=dt.date(2026, 1, 1), period_to=dt.date(2026, 6, 30)
        )
    assert whole.hours == Decimal("16.50") and spring.hours == Decimal("12.50")
    assert whole.verify_url is None  # no public_base_url: no link (test_certificate_document)


def test_verification_tells_who_where_how_many_hours_and_when(world: World) -> None:
    person = _served(world)
    with world.as_(world.coordinator) as tx:
        cert = tx.volunteer.issue_certificate(person)
    with world.kit.begin() as tx:  # a third party: no organisation, no account
        check = tx.volunteer.verify_certificate(cert.token)
    assert check.name == "张小明" and check.organisation == "Volunteer Centre"
    assert check.hours == Decimal("16.50") and check.user_id == person
    assert check.issued_at == cert.issued_at


def test_forged_or_altered_tokens_are_refused(world: World) -> None:
    person = _served(world)
    shift = world.shift()
    with world.as_(world.coordinator) as tx:
        cert = tx.volunteer.issue_certificate(person)
        qr = tx.volunteer.checkin_token(shift.id)
    head, _, sig = cert.token.rpartition(".")
    with pytest.raises(TokenTampered), world.kit.begin() as tx:
        tx.volunteer.verify_certificate(head + "." + sig[::-1])
    with pytest.raises(TokenTampered), world.kit.begin() as tx:
        tx.volunteer.verify_certificate("eyJjIjoiMSJ9.forged.signature")
    with pytest.raises(TokenWrongPurpose), world.kit.begin() as tx:
        tx.volunteer.verify_certificate(qr)


def test_a_revoked_certificate_no_longer_verifies(world: World) -> None:
    person = _served(world)
    with world.as_(world.coordinator) as tx:
        cert = tx.volunteer.issue_certificate(person)
        tx.volunteer.revoke_certificate(cert.id)
    with pytest.raises(NotFound), world.kit.begin() as tx:
        tx.volunteer.verify_certificate(cert.token)


def test_the_pdf_carries_chinese_and_english_text(world: World) -> None:
    person = _served(world)
    with world.as_(world.coordinator) as tx:
        cert = tx.volunteer.issue_certificate(person)
    with world.as_(person) as tx:  # the holder may fetch their own
        pdf = tx.volunteer.certificate_pdf(cert.id)
    assert pdf.startswith(b"%PDF")
    assert b"/BaseFont /STSong-Light" in pdf  # the CID font renders the Chinese
    assert b"/BaseFont /Helvetica" in pdf
