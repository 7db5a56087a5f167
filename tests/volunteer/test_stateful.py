"""Hypothesis: any sequence of sign-ups and cancellations keeps the shift's books straight."""

from __future__ import annotations

import itertools
import uuid

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from volunteer_helpers import World

from ngo_kit import SYSTEM, AlreadyExists, Kit, NotFound
from ngo_kit.testing import KitFactory

CAPACITY = 2
PEOPLE = 4
_orgs = itertools.count()


def test_sign_ups_and_cancellations_keep_capacity_and_order(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=["registration", "volunteer"])

    class ShiftBook(RuleBasedStateMachine):
        """Model: the confirmed set and the waitlist (in arrival order)."""

        def __init__(self) -> None:
            super().__init__()
            self.kit: Kit = kit
            self.confirmed: set[uuid.UUID] = set()
            self.waiting: list[uuid.UUID] = []

        @initialize()
        def make_shift(self) -> None:
            org = self.kit.create_organisation(f"s{next(_orgs)}", "Stateful")
            self.world = World(self.kit, org)
            self.people = [self.world.person(f"P{i}") for i in range(PEOPLE)]
            self.shift = self.world.shift(capacity=CAPACITY)

        @rule(who=st.integers(0, PEOPLE - 1))
        def sign_up(self, who: int) -> None:
            person = self.people[who]
            try:
                with self.world.as_(person) as tx:
                    result = tx.volunteer.sign_up(self.shift.id)
            except AlreadyExists:
                assert person in self.confirmed or person in self.waiting
                return
            if len(self.confirmed) < CAPACITY:
                assert result.status == "confirmed"
                self.confirmed.add(person)
            else:
                assert result.status == "waitlisted"
                self.waiting.append(person)
                assert result.position == len(self.waiting)

        @rule(who=st.integers(0, PEOPLE - 1))
        def cancel(self, who: int) -> None:
            person = self.people[who]
            try:
                with self.world.as_(person) as tx:
                    tx.volunteer.cancel(self.shift.id)
            except NotFound:
                assert person not in self.confirmed and person not in self.waiting
                return
            if person in self.confirmed:
                self.confirmed.discard(person)
                if self.waiting:
                    self.confirmed.add(self.waiting.pop(0))
            else:
                self.waiting.remove(person)

        @invariant()
        def books_match(self) -> None:
            if not hasattr(self, "shift"):
                return
            with self.kit.begin(org=self.world.org, actor=SYSTEM) as tx:
                rows = tx.volunteer.signups(self.shift.id)
                taken = tx.volunteer.shift(self.shift.id).taken
            confirmed = {r.user_id for r in rows if r.status == "confirmed"}
            waiting = [r.user_id for r in rows if r.status == "waitlisted"]
            assert confirmed == self.confirmed
            assert waiting == self.waiting
            assert taken == len(confirmed) <= CAPACITY

    ShiftBook.TestCase.settings = settings(max_examples=8, stateful_step_count=15, deadline=None)
    ShiftBook.TestCase().runTest()
