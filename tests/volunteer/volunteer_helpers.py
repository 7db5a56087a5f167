"""Helpers shared by the volunteer module's tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ngo_kit import SYSTEM, Kit
from ngo_kit.modules.volunteer.schemas import ShiftRead
from ngo_kit.tenancy import OrgRead


def soon(hours: float = 24) -> dt.datetime:
    """A UTC time ``hours`` from now, to the minute."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return now + dt.timedelta(hours=hours)


class World:
    """An organisation with a coordinator, and builders for volunteers, activities and shifts."""

    def __init__(self, kit: Kit, org: OrgRead) -> None:
        self.kit = kit
        self.org = org
        self.count = 0
        with kit.begin(org=org, actor=SYSTEM) as tx:
            for code, name in (
                ("first_aid", "First aid"),
                ("driving", "Driving"),
                ("knitting", "Knitting"),
            ):
                tx.volunteer.add_skill(code, name)
            self.activity_id = tx.volunteer.create_activity(title="Food bank").id
        self.coordinator = self.person("Coordinator", role="staff", profile=False)

    def person(
        self,
        name: str = "Volunteer",
        *,
        role: str = "volunteer",
        profile: bool = True,
        approve: bool = True,
        birth_date: dt.date | None = dt.date(1990, 1, 1),
        org: OrgRead | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        """Register someone (with an email), give them a role and (by default) an approved profile."""
        self.count += 1
        with self.kit.begin(org=org or self.org, actor=SYSTEM) as tx:
            user = tx.registration.register(
                email=f"p{self.count}-{uuid.uuid4().hex[:6]}@example.org",
                display_name=name,
                birth_date=birth_date,
            )
            if role != "member":
                tx.tenancy.set_role(user.id, role)
            if profile:
                tx.volunteer.save_profile(user_id=user.id, **fields)
                if approve:
                    tx.volunteer.approve(user.id)
        new_id: uuid.UUID = user.id
        return new_id

    def shift(self, hours_from_now: float = 24, length: float = 3, **fields: Any) -> ShiftRead:
        """A shift of the world's activity."""
        start = soon(hours_from_now)
        fields.setdefault("capacity", 5)
        with self.kit.begin(org=self.org, actor=SYSTEM) as tx:
            return tx.volunteer.create_shift(  # type: ignore[no-any-return]
                activity_id=fields.pop("activity_id", self.activity_id),
                starts_at=start,
                ends_at=start + dt.timedelta(hours=length),
                **fields,
            )

    def as_(self, actor: uuid.UUID | None = None) -> Any:
        """``with world.as_(user) as tx``: a transaction in the world's organisation."""
        return self.kit.begin(org=self.org, actor=actor if actor is not None else SYSTEM)
