"""Helpers for the security review's tests: an app over a kit with every built-in module, people
who register and sign in through it, cookie parsing, and the marks of a leaked internal error."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from fastapi.testclient import TestClient

from ngo_kit import SYSTEM, Kit, hookimpl
from ngo_kit.outbox import OutboxMessage
from ngo_kit.plugins import Channel, Registrar
from ngo_kit.testing import MessageCatcher

PASSWORD = "lantern-harbour-47"
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


@dataclass
class Person:
    """Someone registered through the API, with their session token."""

    id: uuid.UUID
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header for this person's session."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Site:
    """The app under test, the kit behind it, and the messages it delivered."""

    kit: Kit
    client: TestClient
    messages: MessageCatcher
    people: dict[str, Person] = field(default_factory=dict)

    def url(self, path: str, org: str = ORG) -> str:
        """``/api/orgs/<org>/<path>``."""
        return f"/api/orgs/{org}/{path.lstrip('/')}"

    def join(self, name: str, role: str | None = None, **extra: Any) -> Person:
        """Register ``name`` through the API, sign in with a bearer token, give them ``role``."""
        email = f"{name}@example.org"
        res = self.client.post(
            self.url("registration/register"),
            json={"email": email, "password": PASSWORD, "display_name": name.title(), **extra},
        )
        assert res.status_code == 201, res.text
        signed = self.client.post(
            self.url("registration/sign-in"), json={"email": email, "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        self.client.cookies.clear()
        person = Person(uuid.UUID(res.json()["id"]), email, signed.json()["token"])
        if role is not None:
            with self.kit.begin(org=ORG, actor=SYSTEM) as tx:
                tx.tenancy.set_role(person.id, role)
        self.people[name] = person
        return person


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
