"""Helpers for testing an app built on ``ngo_kit.web`` through its HTTP API.

``ApiSite`` wraps a ``TestClient`` over the app and the kit behind it: ``join`` registers a
person through the registration routes, signs them in for a bearer token and, if asked, gives
them a role; ``problem_of`` checks an RFC 9457 problem answer. The kit's own web tests use
these, and so can a project's::

    site = ApiSite(kit, TestClient(create_app(kit)), message_catcher)
    staff = site.join("dan", role="staff")
    res = site.client.get(site.url("inventory/items"), headers=staff.auth)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ngo_kit.tenancy import SYSTEM
from ngo_kit.web.operations import Answered, undeclared

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ngo_kit.kit import Kit
    from ngo_kit.testing import MessageCatcher

#: The password every ``join`` registers with (long and uncommon enough for the rules).
PASSWORD = "lantern-harbour-47"


@dataclass
class ApiPerson:
    """Someone registered through the API, with their session token."""

    id: uuid.UUID
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header for this person's session."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class ApiSite:
    """The app under test (``client``), the kit behind it and the messages it delivered;
    ``org`` is the slug paths and roles default to."""

    kit: Kit
    client: TestClient
    messages: MessageCatcher
    people: dict[str, ApiPerson] = field(default_factory=dict)
    org: str = "rainbow"

    def url(self, path: str, org: str | None = None) -> str:
        """``/api/orgs/<org>/<path>``."""
        return f"/api/orgs/{org or self.org}/{path.lstrip('/')}"

    def join(
        self, name: str, org: str | None = None, role: str | None = None, **extra: Any
    ) -> ApiPerson:
        """Register ``name`` (``<name>@example.org``) in ``org`` through the API, with ``extra``
        registration fields; sign in for a bearer token; give them ``role`` if one is named.

        The messages registration leaves to the outbox worker (the verification link) are then
        delivered, as a deployment's worker would."""
        email = f"{name}@example.org"
        res = self.client.post(
            self.url("registration/register", org),
            json={"email": email, "password": PASSWORD, "display_name": name.title(), **extra},
        )
        assert res.status_code == 201, res.text
        self.kit.outbox.work()
        signed = self.client.post(
            self.url("registration/sign-in", org), json={"email": email, "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        self.client.cookies.clear()  # requests authenticate with the bearer token
        # the account's id from the sign-in: a sign-up with an address an account has already
        # answers with an id that names no account (enumeration prevention)
        person = ApiPerson(uuid.UUID(signed.json()["user"]["id"]), email, signed.json()["token"])
        if role is not None:
            self.set_role(person, role, org)
        self.people[name] = person
        return person

    def set_role(self, person: ApiPerson, role: str, org: str | None = None) -> None:
        """Give ``person`` ``role`` in ``org`` (as the system actor, as an administrator would)."""
        with self.kit.begin(org=org or self.org, actor=SYSTEM) as tx:
            tx.tenancy.set_role(person.id, role)


def problem_of(res: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``res`` is an RFC 9457 problem with ``status`` and ``code``; return its body."""
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = res.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def keep_problems(app: FastAPI) -> list[Answered]:
    """Make ``app`` record every problem a declared operation's route answers; returns the list
    it fills. Check it with :func:`assert_declared` after the requests."""
    log: list[Answered] = []
    app.state.problem_log = log
    return log


def assert_declared(log: list[Answered]) -> None:
    """Fail when a route answered with an error class its operation does not declare, so that
    declarations (and the OpenAPI responses and reference pages made from them) stay true."""
    found = undeclared(log)
    assert not found, "undeclared errors answered:\n" + "\n".join(found)
