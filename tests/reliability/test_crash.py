"""Crash consistency: a writer killed with SIGKILL mid-batch leaves no partial unit of work."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from ngo_kit import SYSTEM
from ngo_kit.audit import AuditEntry
from ngo_kit.outbox import OutboxRow
from ngo_kit.testing import KitFactory

WORKER = Path(__file__).with_name("crash_worker.py")


def test_a_killed_writer_leaves_whole_units_and_whole_chains(kit_factory: KitFactory) -> None:
    kit = kit_factory(modules=[])
    kit.create_organisation("crash", "Crash")
    url = kit.engine.url.render_as_string(hide_password=False)
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), url],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        assert proc.stdout is not None
        stop_after = random.randint(5, 40)
        for line in proc.stdout:
            if int(line) >= stop_after:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-transaction, most likely
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"round {round_}: the writer was not killed"

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
