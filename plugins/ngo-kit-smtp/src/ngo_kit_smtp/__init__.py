"""ngo-kit-smtp: delivers the outbox's ``email`` channel over SMTP with the standard library.

Installed, the plugin is found through the ``ngo_kit`` entry-point group (``smtp``). It stays
inactive until ``NGO_KIT_SMTP_HOST`` is set, so installing it changes nothing for a kit that
does not configure it (messages keep going to the console channel). Once configured it
registers the production-ready ``email`` channel and delivers every outbox message of that
channel: one SMTP conversation per message, UTF-8 MIME, a ``Message-ID`` derived from the
outbox message id (so a retry carries the same id) and the ``X-NGO-Kit-Message-Id`` header so
receivers can drop duplicates. A failed attempt raises, and the outbox retries it.

Settings (environment, or ``SmtpChannel(SmtpSettings(...))`` passed to ``Kit(plugins=...)``)::

    NGO_KIT_SMTP_HOST      the server; unset: the plugin is inactive
    NGO_KIT_SMTP_PORT      default 587 for starttls, 465 for tls, 25 for none
    NGO_KIT_SMTP_USERNAME  and NGO_KIT_SMTP_PASSWORD: log in (both or neither)
    NGO_KIT_SMTP_FROM      the sender, "Relief Hub <noreply@example.org>" (required)
    NGO_KIT_SMTP_TLS       none | starttls (default) | tls (implicit TLS, "SMTPS")
    NGO_KIT_SMTP_TIMEOUT   seconds for connecting and each reply (default 10)
    NGO_KIT_SMTP_CA_FILE   a PEM file of certificate authorities to trust (private CAs)

A bad value stops the kit at start-up with ``ConfigurationError`` ``smtp.E00x`` naming the
setting.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ngo_kit.errors import ConfigurationError
from ngo_kit.hookspecs import hookimpl
from ngo_kit.outbox import OutboxMessage
from ngo_kit.plugins import Channel, Registrar

__version__ = "0.1.0"

CHANNEL = "email"
#: The header carrying the outbox message id, the same on every retry of one message.
MESSAGE_ID_HEADER = "X-NGO-Kit-Message-Id"
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
ENV_PREFIX = "NGO_KIT_SMTP_"

TlsMode = Literal["none", "starttls", "tls"]


class SmtpSettings(BaseSettings):
    """Where and how to send email; read from ``NGO_KIT_SMTP_*`` environment variables.

    Build one directly (``SmtpSettings(host=..., from_address=...)``) to configure a kit in
    code; then call :meth:`check` (``SmtpChannel`` does) to turn mistakes into
    ``ConfigurationError``.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True, frozen=True
    )

    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    from_address: str = Field(default="", validation_alias=f"{ENV_PREFIX}FROM")
    tls: TlsMode = "starttls"
    timeout: float = Field(default=10.0, gt=0, le=600)
    ca_file: Path | None = None

    @property
    def effective_port(self) -> int:
        """The port to connect to: the setting, or the usual one for the TLS mode."""
        return self.port or DEFAULT_PORTS[self.tls]

    @property
    def configured(self) -> bool:
        """True when a host is set (otherwise the plugin stays out of the way)."""
        return bool(self.host.strip())

    @property
    def sender(self) -> str:
        """The bare address of ``from_address`` (the SMTP envelope sender)."""
        return parseaddr(self.from_address)[1]

    def check(self) -> SmtpSettings:
        """Refuse an inconsistent configuration with ``ConfigurationError``; returns ``self``."""
        if not self.configured:
            others = sorted(_env_name(f) for f in self.model_fields_set if f != "host")
            if others:
                raise ConfigurationError(
                    "smtp.E002",
                    "{setting} is not set, but other SMTP settings are ({others}): set the server's host name",
                    setting=f"{ENV_PREFIX}HOST",
                    others=", ".join(others),
                )
            return self
        if not self.from_address:
            raise ConfigurationError(
                "smtp.E003",
                "{setting} is required: the address emails are sent from",
                setting=f"{ENV_PREFIX}FROM",
            )
        if "@" not in self.sender or any(c in self.from_address for c in "\r\n"):
            raise ConfigurationError(
                "smtp.E003",
                "{setting} must be an email address such as 'Relief Hub <noreply@example.org>', "
                "not {value!r}",
                setting=f"{ENV_PREFIX}FROM",
                value=self.from_address,
            )
        password = self.password.get_secret_value()
        if bool(self.username) != bool(password):
            raise ConfigurationError(
                "smtp.E004",
                "{given} is set but {missing} is not: set both to log in, or neither",
                given=f"{ENV_PREFIX}{'USERNAME' if self.username else 'PASSWORD'}",
                missing=f"{ENV_PREFIX}{'PASSWORD' if self.username else 'USERNAME'}",
            )
        if not (self.username + password).isascii():
            raise ConfigurationError(
                "smtp.E004",
                "{username} and {password} must be ASCII (smtplib sends them so)",
                username=f"{ENV_PREFIX}USERNAME",
                password=f"{ENV_PREFIX}PASSWORD",
            )
        if password and self.tls == "none" and not _is_loopback(self.host):
            raise ConfigurationError(
                "smtp.E005",
                "{setting}=none would send the password to {host} unencrypted: use starttls or tls",
                setting=f"{ENV_PREFIX}TLS",
                host=self.host,
            )
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ConfigurationError(
                "smtp.E006",
                "{setting} names {path}, which is not a readable file",
                setting=f"{ENV_PREFIX}CA_FILE",
                path=str(self.ca_file),
            )
        return self


def load_settings(**values: object) -> SmtpSettings:
    """Read and check the settings (keyword arguments over ``NGO_KIT_SMTP_*`` variables).

    Raises ``ConfigurationError``: ``smtp.E001`` for a value of the wrong kind (naming the
    variable), ``smtp.E002``..``E006`` for settings that do not fit together.
    """
    try:
        settings = SmtpSettings(**values)  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigurationError(
            "smtp.E001",
            "{setting}: {problem}",
            setting=_env_name(field),
            problem=first["msg"],
        ) from None
    return settings.check()


def _env_name(field: str) -> str:
    if field in ("from_address", f"{ENV_PREFIX}FROM"):
        return f"{ENV_PREFIX}FROM"
    return f"{ENV_PREFIX}{field.upper()}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the message ---------------------------------------------------------------------------


def build_email(settings: SmtpSettings, message: OutboxMessage) -> EmailMessage:
    """The MIME message for an outbox message: UTF-8 text, plus HTML from ``data["html"]``.

    ``Message-ID`` is ``<outbox id@sender's domain>`` and ``X-NGO-Kit-Message-Id`` the outbox
    id, both the same on every retry. Raises ``ValueError`` for a recipient that is not an
    address or a header with a line break (the outbox records it as a failed attempt).
    """
    recipient = message.recipient.strip()
    if "@" not in parseaddr(recipient)[1] or any(c in recipient for c in "\r\n"):
        raise ValueError(f"recipient {message.recipient!r} is not an email address")
    domain = settings.sender.rpartition("@")[2]
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = settings.from_address
    email["To"] = recipient
    email["Subject"] = message.subject
    email["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    email["Message-ID"] = f"<{message.id}@{domain}>"
    email[MESSAGE_ID_HEADER] = str(message.id)
    email["Content-Language"] = message.locale.replace("_", "-")
    email.set_content(message.body, charset="utf-8")
    html = message.data.get("html")
    if isinstance(html, str) and html:
        email.add_alternative(html, subtype="html", charset="utf-8")
    return email


def send_email(settings: SmtpSettings, email: EmailMessage) -> str:
    """Send one message in one SMTP conversation; returns its ``Message-ID``.

    Raises what ``smtplib``, ``ssl`` and ``socket`` raise (refused connection, timeout, a
    certificate that does not verify, STARTTLS not offered, a refused login or recipient).
    """
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    host, port, timeout = settings.host, settings.effective_port, settings.timeout
    client: smtplib.SMTP
    if settings.tls == "tls":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if settings.tls == "starttls":
            client.starttls(context=context)  # SMTPNotSupportedError when the server lacks it
        if settings.username:
            client.login(settings.username, settings.password.get_secret_value())
        client.send_message(email, from_addr=settings.sender)
    return str(email["Message-ID"])


# --- the plugin ----------------------------------------------------------------------------


class SmtpChannel:
    """The plugin object: registers and delivers the ``email`` channel.

    ``SmtpChannel()`` (what the entry point loads) reads ``NGO_KIT_SMTP_*`` whenever it is
    asked; ``SmtpChannel(SmtpSettings(...))`` uses the given settings, for kits configured in
    code (pass it in ``Kit(plugins=[...])`` with autoload off, or the email channel is
    registered twice).
    """

    def __init__(self, settings: SmtpSettings | None = None) -> None:
        self._settings = settings.check() if settings is not None else None
        # the entry point's instance is "smtp"; one configured in code is told apart from it
        self.ngo_kit_plugin_name = "smtp" if settings is None else f"smtp ({settings.host})"

    def settings(self) -> SmtpSettings:
        """The settings in force (the given ones, or the environment's, checked)."""
        return self._settings if self._settings is not None else load_settings()

    @hookimpl
    def ngo_kit_register_channels(self, register: Registrar[Channel]) -> None:
        """Register ``email`` (production-ready) once a host is configured.

        Reading the settings here makes a bad one stop the kit at start-up.
        """
        settings = self.settings()
        if settings.configured:
            register(
                Channel(
                    CHANNEL,
                    production_ready=True,
                    description=f"SMTP via {settings.host}:{settings.effective_port} "
                    f"({settings.tls})",
                )
            )

    @hookimpl
    def ngo_kit_deliver_message(self, message: OutboxMessage) -> str | None:
        """Send an ``email`` message; ``None`` for other channels or when not configured."""
        if message.channel != CHANNEL:
            return None
        settings = self.settings()
        if not settings.configured:
            return None
        return send_email(settings, build_email(settings, message))


#: What the ``smtp`` entry point registers: reads its settings from the environment.
plugin = SmtpChannel()

__all__ = [
    "CHANNEL",
    "MESSAGE_ID_HEADER",
    "SmtpChannel",
    "SmtpSettings",
    "build_email",
    "load_settings",
    "plugin",
    "send_email",
]
