"""Helpers for the modules' HTTP API tests: people registered through the API, roles, problems."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from ngo_kit import SYSTEM, Kit, hookimpl
from ngo_kit.context import Context
from ngo_kit.testing import MessageCatcher

PASSWORD = "lantern-harbour-47"
ORG = "rainbow"
OTHER = "sunrise"


class HoursEarnPoints:
    """A bridge for the tests: approved service hours earn 10 points an hour, in the same
    transaction (what the ngo-kit-volunteer-points plugin does with an organisation's rule)."""

    ngo_kit_plugin_name = "tests.web.hours-earn-points"

    @hookimpl(optionalhook=True)
    def ngo_kit_hours_approved(self, tx: Context, hours: Any) -> None:
        with tx.elevated():
            tx.points.award(
                hours.user_id,
                int(hours.hours * 10),
                reason="service hours",
                key=f"hours:{hours.id}",
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
class Api:
    """The app under test and the kit behind it."""

    kit: Kit
    client: TestClient
    messages: MessageCatcher
    people: dict[str, Person] = field(default_factory=dict)

    def url(self, path: str, org: str = ORG) -> str:
        """``/api/orgs/<org>/<path>``."""
        return f"/api/orgs/{org}/{path.lstrip('/')}"

    def join(self, name: str, org: str = ORG, role: str | None = None) -> Person:
        """Register ``name`` in ``org`` through the API, sign in, and give them ``role``."""
        email = f"{name}@example.org"
        res = self.client.post(
            self.url("registration/register", org),
            json={"email": email, "password": PASSWORD, "display_name": name.title()},
        )
        assert res.status_code == 201, res.text
        user_id = uuid.UUID(res.json()["id"])
        signed = self.client.post(
            self.url("registration/sign-in", org), json={"email": email, "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        self.client.cookies.clear()  # requests in the tests authenticate with the bearer token
        person = Person(user_id, email, signed.json()["token"])
        if role is not None:
            self.set_role(person, role, org)
        self.people[name] = person
        return person

    def set_role(self, person: Person, role: str, org: str = ORG) -> None:
        """Give ``person`` ``role`` in ``org`` (the system actor, as an administrator would)."""
        with self.kit.begin(org=org, actor=SYSTEM) as tx:
            tx.tenancy.set_role(person.id, role)


def problem_of(res: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``res`` is an RFC 9457 problem with ``status`` and ``code``; return its body."""
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = res.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
