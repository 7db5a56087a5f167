"""Sign-ups under real concurrency: threads, each with its own transaction."""

from __future__ import annotations

import threading
import uuid

from volunteer_helpers import World

from ngo_kit import SYSTEM, Kit
from ngo_kit.modules.volunteer.schemas import SignUpRead
from ngo_kit.testing import run_together

THREADS = 50
CAPACITY = 10


def _people(world: World, count: int) -> list[uuid.UUID]:
    """Many approved volunteers, made in one transaction (registration's own API)."""
    ids = []
    with world.as_() as tx:
        for i in range(count):
            user = tx.registration.register(email=f"c{i}@example.org", display_name=f"C{i}")
            tx.volunteer.save_profile(user_id=user.id)
            tx.volunteer.approve(user.id)
            ids.append(user.id)
    return ids


def _race(kit: Kit, world: World, shift_id: uuid.UUID, people: list[uuid.UUID]) -> list[SignUpRead]:
    def run(i: int) -> SignUpRead:
        with kit.begin(org=world.org, actor=people[i]) as tx:
            signup: SignUpRead = tx.volunteer.sign_up(shift_id)
        return signup

    results = run_together(len(people), run)
    assert [r for r in results if isinstance(r, BaseException)] == []
    return results


def test_fifty_threads_fill_ten_places_and_wait_in_arrival_order(vkit: Kit, world: World) -> None:
    shift = world.shift(capacity=CAPACITY)
    people = _people(world, THREADS)
    results = _race(vkit, world, shift.id, people)
    confirmed = [r for r in results if r.status == "confirmed"]
    waiting = sorted((r for r in results if r.status == "waitlisted"), key=lambda r: r.seq)
    assert len(confirmed) == CAPACITY
    assert len(waiting) == THREADS - CAPACITY
    # Arrival numbers are exactly 1..50; the first ten arrivals got the places.
    assert sorted(r.seq for r in results) == list(range(1, THREADS + 1))
    assert max(r.seq for r in confirmed) < min(r.seq for r in waiting)
    with vkit.begin(org=world.org, actor=SYSTEM) as tx:
        assert tx.volunteer.shift(shift.id).taken == CAPACITY
        listed = tx.volunteer.signups(shift.id, status="waitlisted")
    assert [s.user_id for s in listed] == [r.user_id for r in waiting]
    assert [s.position for s in listed] == list(range(1, THREADS - CAPACITY + 1))
    # Cancelling one confirmed place promotes the first in the waitlist.
    with vkit.begin(org=world.org, actor=confirmed[0].user_id) as tx:
        tx.volunteer.cancel(shift.id)
    with vkit.begin(org=world.org, actor=SYSTEM) as tx:
        statuses = {s.user_id: s.status for s in tx.volunteer.signups(shift.id)}
        assert tx.volunteer.shift(shift.id).taken == CAPACITY
    assert statuses[waiting[0].user_id] == "confirmed"
    assert all(statuses[w.user_id] == "waitlisted" for w in waiting[1:])


def test_concurrent_cancels_promote_each_waiting_person_once(vkit: Kit, world: World) -> None:
    shift = world.shift(capacity=5)
    people = _people(world, 10)
    for person in people:
        with vkit.begin(org=world.org, actor=person) as tx:
            tx.volunteer.sign_up(shift.id)
    errors: list[BaseException] = []

    def cancel(person: uuid.UUID) -> None:
        try:
            with vkit.begin(org=world.org, actor=person) as tx:
                tx.volunteer.cancel(shift.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=cancel, args=(p,)) for p in people[:5]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with vkit.begin(org=world.org, actor=SYSTEM) as tx:
        statuses = {s.user_id: s.status for s in tx.volunteer.signups(shift.id)}
        assert tx.volunteer.shift(shift.id).taken == 5
    assert [statuses[p] for p in people[5:]] == ["confirmed"] * 5
