"""Sign-ups, hours, claims and tasks go to members of the organisation only."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from volunteer_helpers import World

from ngo_kit import NotFound

DAY = dt.date(2026, 11, 2)


def test_nobody_and_former_members_get_no_places_hours_or_work(world: World) -> None:
    leaver = world.person("Leaver")
    shift = world.shift()
    with world.as_() as tx:
        task = tx.volunteer.create_task(title="Sort", quantity=10, unit="pieces")
        tx.volunteer.sign_up(shift.id, leaver)  # a member may, as before
        tx.volunteer.cancel(shift.id, leaver)
        tx.tenancy.remove_member(leaver)
    for someone in (leaver, uuid.uuid4()):
        with world.as_() as tx:
            calls: list[Callable[..., object]] = [
                lambda s=someone: tx.volunteer.sign_up(shift.id, s),
                lambda s=someone: tx.volunteer.record_hours(s, 2, served_on=DAY),
                lambda s=someone: tx.volunteer.claim_hours(
                    user_id=s, served_on=DAY, hours=Decimal(2)
                ),
                lambda s=someone: tx.volunteer.assign(task.id, s, 1),
            ]
            for call in calls:
                with pytest.raises(NotFound) as refused:
                    call()
                assert refused.value.to_dict()["field"] == "user_id"
    with world.as_() as tx:
        assert tx.volunteer.hours(leaver) == []
        assert tx.volunteer.claims() == []
