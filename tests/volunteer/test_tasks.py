"""Tasks split into assignments: accept, decline, progress, review, pieces and hours."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from volunteer_helpers import World

from ngo_kit import PermissionDenied, ValidationFailed, hookimpl
from ngo_kit.modules.volunteer import TaskOverAssigned, WrongState
from ngo_kit.testing import KitFactory


def test_a_task_cannot_be_assigned_beyond_its_quantity(world: World) -> None:
    a, b = world.person("A"), world.person("B")
    with world.as_(world.coordinator) as tx:
        task = tx.volunteer.create_task(title="Knit scarves", quantity=20)
        tx.volunteer.assign(task.id, a, 15)
        with pytest.raises(TaskOverAssigned) as info:
            tx.volunteer.assign(task.id, b, 6)
        assert "5" in str(info.value)
        tx.volunteer.assign(task.id, b, 5)
        assert tx.volunteer.task(task.id).assigned == Decimal(20)


def test_declining_returns_the_quantity_to_the_task(world: World) -> None:
    a = world.person("A")
    with world.as_(world.coordinator) as tx:
        task = tx.volunteer.create_task(title="Deliver parcels", quantity=30)
        offer = tx.volunteer.assign(task.id, a, 10)
    with world.as_(a) as tx:
        assert tx.volunteer.decline_assignment(offer.id, note="away").status == "declined"
    with world.as_(world.coordinator) as tx:
        assert tx.volunteer.task(task.id).assigned == Decimal(0)


def test_the_whole_flow_records_pieces_and_fires_task_completed(kit_factory: KitFactory) -> None:
    seen: list[Any] = []

    class Listener:
        ngo_kit_plugin_name = "task-listener"

        @hookimpl
        def ngo_kit_task_completed(self, tx: Any, task: Any, assignment: Any) -> None:
            seen.append((task, assignment))

    kit = kit_factory(modules=["registration", "volunteer"], plugins=[Listener()])
    world = World(kit, kit.create_organisation("craft", "Craft"))
    a, b = world.person("A"), world.person("B")
    with world.as_(world.coordinator) as tx:
        task = tx.volunteer.create_task(title="Scarves for order 12", quantity=20)
        first = tx.volunteer.assign(task.id, a, 12)
        second = tx.volunteer.assign(task.id, b, 8)
    for person, share, made in ((a, first, 12), (b, second, 8)):
        with world.as_(person) as tx:
            tx.volunteer.accept_assignment(share.id)
            assert tx.volunteer.report_progress(share.id, made // 2).progress == Decimal(made // 2)
            with pytest.raises(ValidationFailed):
                tx.volunteer.report_progress(share.id, 99)
            tx.volunteer.submit_assignment(share.id)
    with world.as_(world.coordinator) as tx:
        tx.volunteer.review_assignment(first.id, approve=False, note="loose stitches")
        done_b = tx.volunteer.review_assignment(second.id, accepted_quantity=7)
    with world.as_(a) as tx:
        tx.volunteer.submit_assignment(first.id)
    with world.as_(world.coordinator) as tx:
        tx.volunteer.review_assignment(first.id)
        final = tx.volunteer.task(task.id)
    assert done_b.accepted_quantity == Decimal(7)
    assert final.done == Decimal(19) and final.status == "open"  # one scarf is still missing
    assert [s[1].user_id for s in seen] == [b, a]


def test_an_hours_task_puts_hours_in_the_ledger(world: World) -> None:
    a = world.person("A")
    with world.as_(world.coordinator) as tx:
        task = tx.volunteer.create_task(title="Phone calls", quantity="3", unit="hours")
        share = tx.volunteer.assign(task.id, a, 3)
    with world.as_(a) as tx:
        tx.volunteer.accept_assignment(share.id)
        tx.volunteer.submit_assignment(share.id)
    with world.as_(world.coordinator) as tx:
        tx.volunteer.review_assignment(share.id)
        assert tx.volunteer.task(task.id).status == "done"
        assert [h.hours for h in tx.volunteer.hours(a)] == [Decimal("3.00")]


def test_only_the_assignee_accepts_and_steps_follow_in_order(world: World) -> None:
    a, b = world.person("A"), world.person("B")
    with world.as_(world.coordinator) as tx:
        task = tx.volunteer.create_task(title="t", quantity=2)
        share = tx.volunteer.assign(task.id, a, 2)
    with pytest.raises(PermissionDenied), world.as_(b) as tx:
        tx.volunteer.accept_assignment(share.id)
    with pytest.raises(WrongState), world.as_(a) as tx:
        tx.volunteer.submit_assignment(share.id)
    with pytest.raises(WrongState), world.as_(world.coordinator) as tx:
        tx.volunteer.review_assignment(share.id)
