"""Delivery against a real SMTP server (aiosmtpd) on 127.0.0.1, on an ephemeral port."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from ngo_kit_smtp import MESSAGE_ID_HEADER, SmtpChannel, SmtpSettings
from pydantic import SecretStr

from ngo_kit import SYSTEM, Kit
from ngo_kit.db import utcnow
from ngo_kit.outbox import PENDING, SENT, OutboxRow
from ngo_kit.testing import KitFactory

SENDER = "Relief Hub 救援中心 <noreply@relief.example.org>"


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def emails(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        parsed = []
        for envelope in self.envelopes:
            raw = envelope.original_content or b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


class LocalServer(Controller):
    """aiosmtpd's threaded controller, bound to an ephemeral port when ``port=0``."""

    def _create_server(self) -> Any:
        async def create() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


def start_server(inbox: Inbox, port: int = 0, **kwargs: Any) -> LocalServer:
    server = LocalServer(inbox, hostname="127.0.0.1", port=port, **kwargs)
    server.start()
    return server


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def server(inbox: Inbox) -> Iterator[LocalServer]:
    running = start_server(inbox)
    yield running
    running.stop()


def settings_for(server: LocalServer, **values: Any) -> SmtpSettings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "from_address": SENDER,
        "tls": "none",
        "timeout": 5,
    }
    base.update(values)
    return SmtpSettings(**base)


def smtp_kit(kit_factory: KitFactory, settings: SmtpSettings, **overrides: Any) -> Kit:
    return kit_factory(
        modules=[], plugins=[SmtpChannel(settings)], catch_messages=False, **overrides
    )


def row(kit: Kit, message_id: Any) -> OutboxRow:
    with kit.begin(actor=SYSTEM) as tx:
        return tx.session.scalars(sa.select(OutboxRow).where(OutboxRow.id == message_id)).one()


def make_due(kit: Kit, message_id: Any) -> None:
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(OutboxRow).where(OutboxRow.id == message_id).values(next_attempt_at=utcnow())
        )


def test_an_email_is_delivered_with_utf8_mime_and_the_outbox_id(
    kit_factory: KitFactory, server: LocalServer, inbox: Inbox
) -> None:
    kit = smtp_kit(kit_factory, settings_for(server))
    org = kit.create_organisation("rainbow", "Rainbow Aid")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        message_id = tx.send(
            "email", "王小明 <xiaoming@example.org>", "欢迎加入彩虹机构", "您的验证码是 123456。"
        )
        assert inbox.envelopes == []  # nothing leaves before the commit
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "noreply@relief.example.org"
    assert envelope.rcpt_tos == ["xiaoming@example.org"]
    [received] = inbox.emails()
    assert received["Subject"] == "欢迎加入彩虹机构"
    assert received["From"] == SENDER
    assert received[MESSAGE_ID_HEADER] == str(message_id)
    assert received["Message-ID"] == f"<{message_id}@relief.example.org>"
    body = received.get_body(("plain",))
    assert body is not None and body.get_content_charset() == "utf-8"
    assert body.get_content().strip() == "您的验证码是 123456。"
    raw = envelope.original_content or b""
    assert "欢迎".encode() not in raw  # headers are encoded words, the body is transfer-encoded
    stored = row(kit, message_id)
    assert (stored.status, stored.attempts) == (SENT, 1)
    assert stored.receipt == f"<{message_id}@relief.example.org>"


def test_html_in_data_makes_a_multipart_alternative(
    kit_factory: KitFactory, server: LocalServer, inbox: Inbox
) -> None:
    kit = smtp_kit(kit_factory, settings_for(server))
    with kit.begin(actor=SYSTEM) as tx:
        tx.send("email", "ada@example.org", "Shift", "Plain text", data={"html": "<p>你好</p>"})
    [received] = inbox.emails()
    assert received.get_content_type() == "multipart/alternative"
    html = received.get_body(("html",))
    assert html is not None and "<p>你好</p>" in html.get_content()


def test_other_channels_are_left_to_other_plugins(
    kit_factory: KitFactory, server: LocalServer, inbox: Inbox, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = smtp_kit(kit_factory, settings_for(server))
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("sms", "+8613800000000", body="code 1")
    assert inbox.envelopes == []
    assert row(kit, message_id).receipt == "console"
    assert "code 1" in capsys.readouterr().out


def test_a_server_that_is_down_leaves_an_error_and_a_retry(
    kit_factory: KitFactory, inbox: Inbox
) -> None:
    running = start_server(inbox)
    port = running.port
    running.stop()  # the server is down
    kit = smtp_kit(kit_factory, settings_for(running), outbox_backoff_seconds=30)
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Hello", "Hi Ada")
    stored = row(kit, message_id)
    assert (stored.status, stored.attempts) == (PENDING, 1)
    assert (stored.last_error or "").startswith("ConnectionRefusedError")
    assert kit.outbox.work().handled == 0  # waits for its backoff
    running = start_server(inbox, port=port)  # back up
    try:
        make_due(kit, message_id)
        assert kit.outbox.work().sent == 1
    finally:
        running.stop()
    stored = row(kit, message_id)
    assert (stored.status, stored.attempts, stored.last_error) == (SENT, 2, None)
    [received] = inbox.emails()
    assert received[MESSAGE_ID_HEADER] == str(message_id)


def test_a_recipient_that_is_not_an_address_is_a_failed_attempt(
    kit_factory: KitFactory, server: LocalServer, inbox: Inbox
) -> None:
    kit = smtp_kit(kit_factory, settings_for(server))
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "not an address", "Hello", "Hi")
    stored = row(kit, message_id)
    assert stored.status == PENDING
    assert "is not an email address" in (stored.last_error or "")
    assert inbox.envelopes == []


def test_starttls_against_a_server_without_it_fails_instead_of_sending_in_clear(
    kit_factory: KitFactory, server: LocalServer, inbox: Inbox
) -> None:
    kit = smtp_kit(kit_factory, settings_for(server, tls="starttls"))
    with kit.begin(actor=SYSTEM) as tx:
        message_id = tx.send("email", "ada@example.org", "Hello", "Hi")
    assert "STARTTLS extension not supported" in (row(kit, message_id).last_error or "")
    assert inbox.envelopes == []


# --- TLS, with a certificate made for the test -------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def test_implicit_tls_delivers_when_the_certificate_verifies(
    kit_factory: KitFactory, inbox: Inbox, certificate: tuple[Path, Path]
) -> None:
    running = start_server(inbox, ssl_context=server_context(certificate))
    try:
        trusted = settings_for(running, tls="tls", ca_file=certificate[0])
        kit = smtp_kit(kit_factory, trusted)
        with kit.begin(actor=SYSTEM) as tx:
            ok = tx.send("email", "ada@example.org", "Over TLS", "Hi")
        untrusted = smtp_kit(kit_factory, settings_for(running, tls="tls"))
        with untrusted.begin(actor=SYSTEM) as tx:
            refused = tx.send("email", "ada@example.org", "Unverified", "Hi")
    finally:
        running.stop()
    assert row(kit, ok).status == SENT
    assert "CERTIFICATE_VERIFY_FAILED" in (row(untrusted, refused).last_error or "")
    assert [e["Subject"] for e in inbox.emails()] == ["Over TLS"]


class Credentials:
    """An aiosmtpd authenticator accepting one user name and password."""

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"hub",
            b"s3cret-pass",
        )
        return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 235 or 535


def test_starttls_with_login_and_a_wrong_password(
    kit_factory: KitFactory, inbox: Inbox, certificate: tuple[Path, Path]
) -> None:
    running = start_server(
        inbox,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=Credentials(),
        auth_required=True,
    )
    try:
        good = settings_for(
            running,
            tls="starttls",
            ca_file=certificate[0],
            username="hub",
            password="s3cret-pass",
        )
        kit = smtp_kit(kit_factory, good)
        with kit.begin(actor=SYSTEM) as tx:
            ok = tx.send("email", "ada@example.org", "Logged in", "Hi")
        bad = smtp_kit(kit_factory, good.model_copy(update={"password": SecretStr("wrong")}))
        with bad.begin(actor=SYSTEM) as tx:
            refused = tx.send("email", "ada@example.org", "Wrong password", "Hi")
        plain = smtp_kit(kit_factory, settings_for(running, tls="none"))
        with plain.begin(actor=SYSTEM) as tx:
            cleartext = tx.send("email", "ada@example.org", "No TLS", "Hi")
    finally:
        running.stop()
    assert row(kit, ok).status == SENT
    assert "SMTPAuthenticationError" in (row(bad, refused).last_error or "")
    assert "STARTTLS" in (row(plain, cleartext).last_error or "")  # the server insists on it
    assert [e["Subject"] for e in inbox.emails()] == ["Logged in"]
