"""A writer that signs people up, awards points and moves stock until it is killed.

Used by test_crash.py (run as a subprocess). Each unit of work is one transaction that
touches every module: a sign-up (registration), a welcome award (points), one comfort kit
issued to the new person (inventory) and a place on the shift (volunteer). After a SIGKILL,
every unit must be whole or absent.
"""

from __future__ import annotations

import os
import sys
import uuid

from ngo_kit import SYSTEM, Kit
from ngo_kit.testing import settings_for_tests

MODULES = ["registration", "points", "inventory", "volunteer"]


def main(url: str, shift_id: str) -> None:
    kit = Kit(
        settings=settings_for_tests(url, outbox_dispatch_after_commit=False),
        modules=MODULES,
        autoload=False,
    )
    shift = uuid.UUID(shift_id)
    n = 0
    while True:
        n += 1
        with kit.begin(org="crash", actor=SYSTEM) as tx:
            person = tx.registration.register(
                email=f"w{os.getpid()}-{n}@example.org", display_name=f"志愿者 {n}"
            )
            tx.points.award(person.id, 10, reason="welcome", key=f"welcome:{person.id}")
            tx.inventory.issue(item="kit", quantity=1, from_="wh", recipient=str(person.id))
            tx.volunteer.save_profile(user_id=person.id)
            tx.volunteer.approve(person.id)
            tx.volunteer.sign_up(shift, person.id)
        print(n, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
