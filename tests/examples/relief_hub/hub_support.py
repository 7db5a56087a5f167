"""Helpers for relief_hub's page tests: a small world of two organisations and a browser-like
client that reads each form's CSRF token the way a browser submits it."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

from examples.relief_hub.app import create_relief_hub
from ngo_kit import SYSTEM, Kit
from ngo_kit.testing import MessageCatcher

RAINBOW, RIVERSIDE = "rainbow", "riverside"
PASSWORD = "quiet harbour lanterns 42"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Hub:
    """The app over a kit, the people it has and the messages the kit delivered."""

    kit: Kit
    client_app: Any
    messages: MessageCatcher
    people: dict[str, uuid.UUID] = field(default_factory=dict)
    shifts: dict[str, uuid.UUID] = field(default_factory=dict)

    def browser(self, signed_in_as: str | None = None, org: str = RAINBOW) -> Browser:
        """A new browser (cookie jar); signed in as ``signed_in_as`` (a key of ``people``)."""
        found = Browser(TestClient(self.client_app, base_url="https://testserver"))
        if signed_in_as is not None:
            found.sign_in(org, f"{signed_in_as}@example.org")
        return found

    def latest_code(self, phone: str) -> str:
        """The last verification code texted to ``phone`` (after a pass of the outbox worker,
        which the app runs while it serves: registration leaves its messages to it)."""
        self.kit.outbox.work()
        for message in reversed(self.messages.to(phone)):
            code = message.data.get("code")
            if code:
                return str(code)
        raise AssertionError(f"no code was sent to {phone}")


class Browser:
    """Cookies and CSRF tokens like a browser: ``submit`` reads the form page first."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET without following redirects."""
        return self.client.get(path, follow_redirects=False, **kwargs)

    def token(self, page: str) -> str:
        """The CSRF token of the first form on ``page``."""
        response = self.client.get(page)
        assert response.status_code == 200, (page, response.status_code, response.text[-500:])
        found = _TOKEN.search(response.text)
        assert found is not None, f"no form with a CSRF token on {page}"
        return found.group(1)

    def submit(
        self, page: str, action: str | None = None, data: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Open ``page``, then POST its form (to ``action``, default the page) with ``data``."""
        values = {"csrf_token": self.token(page), **(data or {})}
        return self.client.post(action or page, data=values, follow_redirects=False)

    def follow(self, response: httpx.Response) -> httpx.Response:
        """The page a 303 answer leads to."""
        assert response.status_code == 303, (response.status_code, response.text[-800:])
        return self.client.get(response.headers["location"], follow_redirects=False)

    def sign_in(self, org: str, login: str, password: str = PASSWORD) -> None:
        """Sign in through the sign-in page."""
        answer = self.submit(f"/o/{org}/sign-in", data={"login": login, "password": password})
        assert answer.status_code == 303, answer.text[-800:]


def make_hub(kit: Kit, messages: MessageCatcher) -> Hub:
    """Two organisations with staff, an approved volunteer, a shift, goods and a reward."""
    rainbow = kit.create_organisation(
        RAINBOW,
        "彩虹儿童关爱中心",
        timezone="Asia/Shanghai",
        locale="zh_CN",
        settings={"phone_region": "CN", "volunteer": {"self_service_certificates": True}},
    )
    riverside = kit.create_organisation(
        RIVERSIDE, "Riverside Flood Relief", timezone="Europe/London"
    )
    hub = Hub(kit=kit, client_app=create_relief_hub(kit, deliver_messages=False), messages=messages)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    with kit.begin(org=rainbow, actor=SYSTEM) as tx:
        for key, name, role in (("staff", "王老师", "staff"), ("volunteer", "李小红", None)):
            user = tx.registration.register(
                email=f"{key}@example.org", display_name=name, password=PASSWORD
            )
            hub.people[key] = user.id
            if role is not None:
                tx.tenancy.set_role(user.id, role)
        tx.volunteer.save_profile(user_id=hub.people["volunteer"], city="上海")
        tx.volunteer.approve(hub.people["volunteer"])
        activity = tx.volunteer.create_activity(title="安慰包分装", place="仓库")
        shift = tx.volunteer.create_shift(
            activity_id=activity.id,
            starts_at=start,
            ends_at=start + dt.timedelta(hours=3),
            capacity=5,
        )
        hub.shifts["rainbow"] = shift.id
        tx.inventory.create_location(code="store", name="仓库")
        tx.inventory.create_item(code="comfort-kit", name="Comfort kit", name_zh="安慰包")
        tx.inventory.receive(
            item="comfort-kit", quantity=20, to="store", donor="爱心企业", donation="D-RB-1"
        )
        tx.points.add_rule(
            name="per-hour", rule_type="volunteer_hours", points=10, per_unit="hours"
        )
    with kit.begin(org=riverside, actor=SYSTEM) as tx:
        user = tx.registration.register(
            email="other-staff@example.org", display_name="Sam Carter", password=PASSWORD
        )
        hub.people["other-staff"] = user.id
        tx.tenancy.set_role(user.id, "staff")
        tx.inventory.create_location(code="depot", name="Depot")
        tx.inventory.create_item(code="blanket", name="Blanket")
        tx.inventory.receive(
            item="blanket", quantity=40, to="depot", donor="Town Council", donation="D-RS-1"
        )
    return hub
