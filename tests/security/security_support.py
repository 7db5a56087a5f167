"""Helpers for the security review's tests: an app over a kit with every built-in module, people
who register and sign in through it, cookie parsing, and the marks of a leaked internal error."""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from ngo_kit import hookimpl
from ngo_kit.outbox import OutboxMessage
from ngo_kit.plugins import Channel, Registrar
from ngo_kit.web.testing import PASSWORD as PASSWORD
from ngo_kit.web.testing import ApiPerson, ApiSite

WRONG_PASSWORD = "not-the-password-1"
ORG = "rainbow"
OTHER = "sunrise"
#: A key of the length production needs (``secrets.token_urlsafe(32)`` has 43 characters).
KEY_A = "a" * 20 + "-first-production-key-0123"
KEY_B = "b" * 20 + "-another-deployment-key-0123"
KEY_C = "c" * 20 + "-rotated-in-newest-key-0123"

#: What an internal error looks like when it leaks: tracebacks, SQL, drivers, table names.
LEAK_MARKERS = re.compile(
    r"Traceback|File \"|\[SQL|\[parameters|\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b|"
    r"(?i:sqlalchemy|psycopg|pymysql|sqlite3|IntegrityError|OperationalError|ProgrammingError|"
    r"DBAPIError|constraint|no such table|does not exist|duplicate entry|registration_account|"
    r"core_outbox|points_account)"
)


#: The kit's web testing helpers under the names these tests use.
Person = ApiPerson
Site = ApiSite


#: ``make(plugins=(), app_options=None, **settings)`` -> a :class:`Site` (the conftest's fixture)
SiteFactory = Callable[..., Site]


def session_cookie(set_cookie: str, name: str) -> Any:
    """The morsel of cookie ``name`` in one ``Set-Cookie`` header value."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    assert name in jar, set_cookie
    return jar[name]


def cookie_flags(set_cookie: str) -> set[str]:
    """The attribute names of a ``Set-Cookie`` value, lower case (``httponly``, ``secure``...)."""
    return {part.split("=", 1)[0].strip().lower() for part in set_cookie.split(";")[1:]}


class ProductionChannels:
    """Production-ready channels (``email`` and ``sms`` unless named) that keep what they
    deliver, as a real provider's plugin would send it. A recipient in ``refuse`` makes delivery fail the way
    smtplib does: with an error whose text quotes the recipient."""

    ngo_kit_plugin_name = "tests.security.channels"

    def __init__(self, names: tuple[str, ...] = ("email", "sms")) -> None:
        self.names = names
        self.delivered: list[OutboxMessage] = []
        self.refuse: set[str] = set()

    @hookimpl
    def ngo_kit_register_channels(self, register: Registrar[Channel]) -> None:
        for name in self.names:
            register(Channel(name, production_ready=True, description=f"test {name} provider"))

    @hookimpl(tryfirst=True)
    def ngo_kit_deliver_message(self, message: OutboxMessage) -> str | None:
        if message.channel not in self.names:
            return None
        if message.recipient in self.refuse:
            raise RuntimeError(f"{{'{message.recipient}': (550, b'mailbox unavailable')}}")
        self.delivered.append(message)
        return f"provider-{len(self.delivered)}"

    def last(self, recipient: str, key: str) -> str:
        """``data[key]`` of the newest message delivered to ``recipient``."""
        found = [m for m in self.delivered if m.recipient == recipient and key in m.data]
        assert found, f"nothing with {key!r} was delivered to {recipient}"
        return str(found[-1].data[key])
