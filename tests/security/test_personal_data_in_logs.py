"""No personal data in logs: a whole day of an NGO's app, in production mode, through every module
and the web layer, with Python logging captured at DEBUG from every logger, leaves no email,
phone number, password, token, code, name, donor or recipient in any record's message, arguments
or exception text.

The day: people register, verify their email and phone, sign in (and fail to), reset a password;
staff award points, receive goods from a named donor and issue them to a named household; a
volunteer gives an emergency contact, signs up, checks in and earns hours and a certificate; one
delivery fails the way smtplib fails (its error quotes the recipient); a person is erased. The
messages go out through a production-ready channel plugin registered by the test.

Two loggers are held back on purpose, and docs/security.md says so: SQLAlchemy's engine logger is
captured at INFO, not DEBUG (at DEBUG it logs result rows, which are personal data, whatever the
kit does; the kit hides statement parameters outside development), and ``httpx``, the test
client's own logger, which a deployed app does not run.

The console channel prints messages by design, in development only; in production it prints
only messages addressed to the ``console`` channel itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from security_support import KEY_A, ORG, PASSWORD, ProductionChannels

from ngo_kit import SYSTEM, Kit
from ngo_kit.outbox import PENDING
from ngo_kit.testing import KitFactory
from ngo_kit.web import create_app

MEI_EMAIL, MEI_PHONE, MEI_NATIONAL = "mei.lin.private@example.org", "+8613800138000", "13800138000"
MEI_NAME = "李梅花 Meihua Lin"
NEW_PASSWORD = "willow-lantern-93"
STAFF_EMAIL, STAFF_NAME = "ops.zhou@example.org", "周运营 Zhou Operations"
DONOR, RECIPIENT = "Huang Family Donors", "Zhao Household Recipient"
CONTACT_NAME, CONTACT_PHONE = "Wang Emergency Contact", "13912345678"
REFUSED = "refused.person@example.org"
#: the test client's logger (``httpx``, or ``httpx2`` here), and SQLAlchemy's row logging
HELD_BACK = {"httpx": logging.WARNING, "httpx2": logging.WARNING, "sqlalchemy.engine": logging.INFO}


class Capture(logging.Handler):
    """Keeps every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[tuple[str, str]]:
        """(logger name, every text of a record: message, arguments, exception, stack)."""
        formatter = logging.Formatter()
        for r in self.records:
            parts = [str(r.msg), r.getMessage()]
            args = r.args if isinstance(r.args, tuple) else (r.args,) if r.args else ()
            parts += [repr(a) for a in args]
            if r.exc_info:
                parts.append(formatter.formatException(r.exc_info))
            if r.exc_text:
                parts.append(r.exc_text)
            if r.stack_info:
                parts.append(r.stack_info)
            yield r.name, "\n".join(parts)


def _level(name: str) -> int:
    """DEBUG, but for the loggers held back and their children."""
    held = [level for prefix, level in HELD_BACK.items() if (name + ".").startswith(prefix + ".")]
    return held[0] if held else logging.DEBUG


@pytest.fixture
def everything_logged() -> Iterator[Capture]:
    """Every logger at DEBUG into one handler (see the module docstring for the two held back)."""
    capture = Capture()
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved = [(lg, lg.level, lg.propagate, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.disabled = False
        lg.setLevel(_level(lg.name))
        if not lg.propagate:
            lg.addHandler(capture)
    for name in HELD_BACK:
        logging.getLogger(name).setLevel(_level(name))
    logging.getLogger().addHandler(capture)
    try:
        yield capture
    finally:
        for lg, level, propagate, disabled in saved:
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
            if capture in lg.handlers:
                lg.removeHandler(capture)


@pytest.fixture
def production(kit_factory: KitFactory, owasp_hashing: None) -> tuple[Kit, ProductionChannels]:
    """A production kit with every module, a real key and production-ready channels."""
    channels = ProductionChannels()
    kit = kit_factory(
        plugins=[channels], catch_messages=False, environment="production", secret_keys=[KEY_A]
    )
    kit.create_organisation(ORG, "Rainbow Charity", settings={"phone_region": "CN"})
    return kit, channels


def _ok(res: Any, status: int = 200) -> Any:
    assert res.status_code == status, res.text
    return res.json() if res.content else None


def _a_day_of_the_app(kit: Kit, channels: ProductionChannels) -> list[str]:
    """Run the day (module docstring) over HTTP; returns every token and code it handled."""
    client = TestClient(create_app(kit), base_url="https://testserver")
    secrets: list[str] = []

    def url(path: str) -> str:
        return f"/api/orgs/{ORG}/{path}"

    def sign_in(email: str, password: str) -> dict[str, str]:
        token = _ok(
            client.post(url("registration/sign-in"), json={"email": email, "password": password})
        )["token"]
        client.cookies.clear()
        secrets.append(token)
        return {"Authorization": f"Bearer {token}"}

    # Staff and Mei register; Mei proves her email and phone.
    staff = _ok(
        client.post(
            url("registration/register"),
            json={"email": STAFF_EMAIL, "password": PASSWORD, "display_name": STAFF_NAME},
        ),
        201,
    )
    with kit.begin(org=ORG, actor=SYSTEM) as tx:
        tx.tenancy.set_role(uuid.UUID(staff["id"]), "admin")
    ops = sign_in(STAFF_EMAIL, PASSWORD)
    mei = _ok(
        client.post(
            url("registration/register"),
            json={
                "email": MEI_EMAIL,
                "phone": MEI_NATIONAL,
                "password": PASSWORD,
                "display_name": MEI_NAME,
            },
        ),
        201,
    )
    kit.outbox.work()  # the sign-up's messages are left to the worker
    link = channels.last(MEI_EMAIL, "token")
    secrets += [link, channels.last(MEI_PHONE, "code")]
    _ok(client.post(url("registration/verify-email"), json={"token": link}))
    me = sign_in(MEI_EMAIL, PASSWORD)
    _ok(client.post(url("registration/me/phone-code"), headers=me), 202)
    code = channels.last(MEI_PHONE, "code")
    secrets.append(code)
    _ok(client.post(url("registration/me/verify-phone"), json={"code": code}, headers=me))

    # Sign-in failures, a reset and the new password.
    for body in (
        {"email": MEI_EMAIL, "password": "wrong-password-1"},
        {"email": "nobody.private@example.org", "password": PASSWORD},
        {"phone": MEI_NATIONAL, "password": "wrong-password-2"},
    ):
        assert client.post(url("registration/sign-in"), json=body).status_code == 401
    _ok(client.post(url("registration/password-reset/request"), json={"email": MEI_EMAIL}), 202)
    kit.outbox.work()
    reset = channels.last(MEI_EMAIL, "token")
    secrets.append(reset)
    _ok(
        client.post(
            url("registration/password-reset"), json={"token": reset, "password": NEW_PASSWORD}
        )
    )
    me = sign_in(MEI_EMAIL, NEW_PASSWORD)

    # Points, and goods from a named donor to a named household.
    _ok(
        client.post(
            url("points/awards"),
            json={"member_id": mei["id"], "points": 30, "reason": "flood relief", "key": "w-1"},
            headers=ops,
        ),
        201,
    )
    _ok(
        client.post(
            url("inventory/items"),
            json={"code": "rice", "name": "Rice", "unit": "bag"},
            headers=ops,
        ),
        201,
    )
    _ok(
        client.post(url("inventory/locations"), json={"code": "main", "name": "Main"}, headers=ops),
        201,
    )
    _ok(
        client.post(
            url("inventory/receipts"),
            json={
                "item": "rice",
                "quantity": "40",
                "to": "main",
                "donor": DONOR,
                "donation": "D-1",
            },
            headers=ops,
        ),
        201,
    )
    _ok(
        client.post(
            url("inventory/issues"),
            json={
                "item": "rice",
                "quantity": "5",
                "from_": "main",
                "recipient": RECIPIENT,
                "recipient_kind": "household",
            },
            headers=ops,
        ),
        201,
    )
    _ok(client.get(url("inventory/donations/D-1/trace"), headers=ops))

    # A volunteer's shift, hours and certificate.
    _ok(
        client.post(
            url("volunteer/profiles"),
            json={
                "user_id": mei["id"],
                "emergency_contact_name": CONTACT_NAME,
                "emergency_contact_phone": CONTACT_PHONE,
            },
            headers=me,
        ),
        201,
    )
    _ok(client.post(url(f"volunteer/profiles/{mei['id']}/approve"), headers=ops))
    activity = _ok(
        client.post(url("volunteer/activities"), json={"title": "Sorting"}, headers=ops), 201
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=10)
    shift = _ok(
        client.post(
            url("volunteer/shifts"),
            json={
                "activity_id": activity["id"],
                "starts_at": start.isoformat(),
                "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
                "capacity": 3,
            },
            headers=ops,
        ),
        201,
    )
    _ok(client.post(url(f"volunteer/shifts/{shift['id']}/sign-up"), json={}, headers=me), 201)
    door = _ok(client.get(url(f"volunteer/shifts/{shift['id']}/checkin-token"), headers=ops))[
        "token"
    ]
    secrets.append(door)
    _ok(
        client.post(
            url(f"volunteer/shifts/{shift['id']}/check-in"), json={"token": door}, headers=me
        )
    )
    _ok(client.post(url(f"volunteer/shifts/{shift['id']}/complete"), headers=ops))
    certificate = _ok(
        client.post(url("volunteer/certificates"), json={"user_id": mei["id"]}, headers=ops), 201
    )["token"]
    secrets.append(certificate)
    _ok(client.get("/api/certificates/verify", params={"token": certificate}))
    _ok(client.post(url("registration/sign-out"), headers=me), 204)

    # A delivery the provider refuses (quoting the address), retried by the worker.
    channels.refuse.add(REFUSED)
    with kit.begin(org=ORG, actor=SYSTEM) as tx:
        secrets.append(tx.registration.invite(email=REFUSED).token)
    kit.outbox.work()

    # Mei is erased.
    with kit.begin(org=ORG, actor=SYSTEM) as tx:
        tx.registration.erase(mei["id"])
    return secrets


def _boundary(value: str) -> re.Pattern[str]:
    """``value`` standing on its own (a six-digit code inside a longer id does not count)."""
    return re.compile(r"(?<![0-9A-Za-z])" + re.escape(value) + r"(?![0-9A-Za-z])")


def test_a_day_of_the_app_in_production_logs_no_personal_data(
    production: tuple[Kit, ProductionChannels], everything_logged: Capture
) -> None:
    kit, channels = production
    secrets = _a_day_of_the_app(kit, channels)
    personal = [
        MEI_EMAIL, MEI_PHONE, MEI_NATIONAL, "李梅花", "Meihua", PASSWORD, NEW_PASSWORD,
        STAFF_EMAIL, "周运营", "Zhou Operations", DONOR, RECIPIENT, CONTACT_NAME, CONTACT_PHONE,
        REFUSED, "nobody.private@example.org", "wrong-password",
    ]  # fmt: skip
    patterns = [_boundary(v) for v in [*personal, *secrets]]
    texts = list(everything_logged.texts())
    found = [(name, p.pattern) for name, text in texts for p in patterns if p.search(text)]
    assert found == []
    # The capture saw the app's own records, the refused delivery's warnings among them.
    outbox = [t for name, t in texts if name == "ngo_kit.outbox"]
    assert outbox and all("RuntimeError" in t for t in outbox)
    assert any(name.startswith("sqlalchemy.engine") for name, _ in texts)
    assert len(channels.delivered) >= 6


def test_a_refused_delivery_keeps_its_error_text_for_operators_not_in_the_log(
    production: tuple[Kit, ProductionChannels], everything_logged: Capture
) -> None:
    kit, channels = production
    channels.refuse.add(REFUSED)
    with kit.begin(org=ORG, actor=SYSTEM) as tx:
        message_id = tx.send("email", REFUSED, "Hello", "A message for a refused address")
    status = kit.outbox.status(message_id)
    assert status.status == PENDING and status.last_error is not None
    assert REFUSED in status.last_error  # the operator's view keeps the provider's answer
    logged = "\n".join(text for _, text in everything_logged.texts())
    assert str(message_id) in logged and REFUSED not in logged


def test_in_production_the_console_channel_prints_no_persons_message(
    kit_factory: KitFactory, owasp_hashing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # The SMS provider is installed, the email provider is not (forgotten, or misspelt): the
    # email with Mei's verification link must wait in the outbox, not go to standard output.
    sms_only = ProductionChannels(names=("sms",))
    kit = kit_factory(
        modules=["registration"], plugins=[sms_only], catch_messages=False,
        environment="production", secret_keys=[KEY_A],
    )  # fmt: skip
    kit.create_organisation(ORG, "Rainbow Charity", settings={"phone_region": "CN"})
    with kit.begin(org=ORG) as tx:
        tx.registration.register(
            email=MEI_EMAIL, phone=MEI_NATIONAL, password=PASSWORD, display_name=MEI_NAME
        )
    kit.outbox.work()  # the sign-up's messages are left to the worker
    printed = capsys.readouterr().out
    assert printed == ""
    assert [m.recipient for m in sms_only.delivered] == [MEI_PHONE]
    assert kit.outbox.pending() == 1  # the email, kept for when its channel is installed
    # (tests/core/test_outbox.py shows it prints in development, and prints messages for the
    # console channel itself in production.)
