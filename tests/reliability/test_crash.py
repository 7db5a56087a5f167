"""Crash consistency: a writer killed with SIGKILL mid-batch leaves no partial unit of work."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import AuditEntry
from ngo_kit.modules.inventory.models import Move
from ngo_kit.modules.registration.models import Account
from ngo_kit.outbox import OutboxRow
from ngo_kit.testing import KitFactory

HERE = Path(__file__).parent
STOCK = 100_000


def _kill_mid_run(kit: Kit, worker: str, *args: str, rounds: int = 3) -> None:
    """Run ``worker`` against ``kit``'s database ``rounds`` times, each killed with SIGKILL
    after a random number of committed units (so most likely inside a transaction)."""
    url = kit.engine.url.render_as_string(hide_password=False)
    for round_ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / worker), url, *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        assert proc.stdout is not None
        stop_after = random.randint(5, 30)
        for line in proc.stdout:
            if int(line) >= stop_after:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"round {round_}: the writer was not killed"


def test_a_killed_writer_leaves_whole_units_and_whole_chains(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[])
    kit.create_organisation("crash", "Crash")
    _kill_mid_run(kit, "crash_worker.py")

    with kit.begin(org="crash", actor=SYSTEM) as tx:
        batches = Counter(
            str(data["batch"])
            for data in tx.session.scalars(
                sa.select(AuditEntry.data).where(AuditEntry.action == "crash.part")
            )
        )
        messages = Counter(tx.session.scalars(sa.select(OutboxRow.recipient)))
    assert batches, "the writer committed something before it was killed"
    assert set(batches.values()) == {3}  # every unit of work is whole, none half-written
    assert {f"batch{b}@example.org" for b in batches} == set(
        messages
    )  # each unit's message, no other
    assert set(messages.values()) == {1}
    assert kit.verify() == []  # chains whole after three hard kills


def test_killed_sign_ups_awards_and_stock_moves_leave_no_partial_operation(
    kit_factory: KitFactory,
) -> None:
    kit = kit_factory(modules=["registration", "points", "inventory", "volunteer"])
    kit.create_organisation("crash", "Crash", timezone="Asia/Shanghai")
    with kit.begin(org="crash", actor=SYSTEM) as tx:
        tx.inventory.create_item(code="kit", name="Comfort kit", name_zh="安慰包")
        tx.inventory.create_location(code="wh", name="Warehouse")
        tx.inventory.receive(item="kit", quantity=STOCK, to="wh", donor="Hope", donation="D-1")
        activity = tx.volunteer.create_activity(title="Sorting donations")
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
        shift = tx.volunteer.create_shift(
            activity_id=activity.id,
            starts_at=start,
            ends_at=start + dt.timedelta(hours=3),
            capacity=STOCK,
        )

    _kill_mid_run(kit, "module_crash_worker.py", str(shift.id))

    with kit.begin(org="crash", actor=SYSTEM) as tx:
        people = set(
            tx.session.scalars(sa.select(Account.id).where(Account.email.like("w%@example.org")))
        )
        issued_to = Counter(
            tx.session.scalars(sa.select(Move.recipient_ref).where(Move.kind == "issue"))
        )
        signed_up = Counter(s.user_id for s in tx.volunteer.signups(shift.id))
        balances = {person: tx.points.balance(person) for person in people}
        on_hand = tx.inventory.on_hand("kit")

    assert people, "the writer committed something before it was killed"
    # every person signed up has exactly their award, their kit and their place; nobody else does
    assert set(balances.values()) == {10}
    assert issued_to == Counter({str(person): 1 for person in people})
    assert signed_up == Counter({person: 1 for person in people})
    assert on_hand == STOCK - len(people)
    assert kit.verify() == []  # audit chains, points balances and stock all recompute
