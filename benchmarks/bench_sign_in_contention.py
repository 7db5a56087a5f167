"""SQLite: how long an audited write waits while another thread signs people in and up.

On SQLite a unit of work holds the database's write lock from its first statement to its
commit, so whatever it does in between, every other writer waits for. Sign-up hashes the
password before its first statement and sign-in verifies it in a read-only snapshot before it
takes the lock (``tx.read_ahead()``), so the argon2id work (about 20 ms of CPU at OWASP's
parameters) should not show in other writers' latency.

The figure: an audited write (``tx.audit`` in its own ``kit.begin()``), made ``--writes`` times
with a short pause between, timed alone and then while a second thread runs sign-ins and
sign-ups (alternately) with ``--pause`` seconds between them. Each line gives the median, the
90th and the 99th percentile in ms; the last line their ratio, contended over alone, in the
same run. A write that waits out the busy timeout is a ``TransactionConflict`` and is counted.

Usage: ``python benchmarks/bench_sign_in_contention.py [--writes N] [--pause S]``. SQLite only
(a temporary file, removed at the end): on PostgreSQL and MariaDB writers lock only the rows
they touch.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import OWASP_ARGON2, miss, use_owasp_argon2, verdict

from ngo_kit import SYSTEM, Kit, TransactionConflict
from ngo_kit.testing import settings_for_tests

MEMORY_KIB, TIME_COST, PARALLELISM = OWASP_ARGON2
PASSWORD = "correct horse battery staple"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--pause", type=float, default=0.01, help="seconds between sign-ins")
    args = parser.parse_args(argv)
    use_owasp_argon2()
    workdir = Path(tempfile.mkdtemp(prefix="ngo_kit_bench_contention_"))
    try:
        run(workdir / "bench.sqlite", args.writes, args.pause)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(path: Path, writes: int, pause: float) -> None:
    """Build a kit on a new SQLite file and print the write latency alone and contended."""
    settings = settings_for_tests(
        f"sqlite:///{path}", outbox_dispatch_after_commit=False, sqlite_busy_timeout_ms=30_000
    )
    kit = Kit(settings=settings, modules=["registration"], autoload=False)
    kit.upgrade()
    org = kit.create_organisation("bench", "Bench")
    with kit.begin(org=org) as tx:
        tx.registration.register(email="known@example.org", password=PASSWORD, display_name="K")

    def write_latencies() -> tuple[list[float], int]:
        times: list[float] = []
        conflicts = 0
        for n in range(writes):
            start = time.perf_counter()
            try:
                with kit.begin(org=org, actor=SYSTEM) as tx:
                    tx.audit("bench.write", "thing", n, "a write beside sign-ins")
            except TransactionConflict:
                conflicts += 1
            times.append(time.perf_counter() - start)
            time.sleep(0.003)
        return times, conflicts

    alone, _ = write_latencies()
    stop = threading.Event()
    signed = [0]

    def sign_ins_and_ups() -> None:
        n = 0
        while not stop.is_set():
            time.sleep(pause)
            n += 1
            if n % 2:
                with kit.begin() as tx:
                    tx.registration.authenticate(email="known@example.org", password=PASSWORD)
            else:
                with kit.begin(org=org) as tx:
                    tx.registration.register(
                        email=f"person{n}@example.org", password=PASSWORD, display_name="P"
                    )
            signed[0] += 1

    other = threading.Thread(target=sign_ins_and_ups)
    started = time.perf_counter()
    other.start()
    try:
        contended, conflicts = write_latencies()
    finally:
        stop.set()
        other.join()
    rate = signed[0] / (time.perf_counter() - started)
    print(f"SQLite, argon2id m={MEMORY_KIB} KiB t={TIME_COST} p={PARALLELISM}")
    print(line("audited write alone", alone))
    print(line(f"beside {rate:.0f} sign-ins and sign-ups a second", contended))
    ratios = [percentile(contended, q) / percentile(alone, q) for q in (0.5, 0.9, 0.99)]
    print(
        f"{'contended / alone':<48} median {ratios[0]:6.2f}x  p90 {ratios[1]:6.2f}x  "
        f"p99 {ratios[2]:6.2f}x  ({conflicts} busy-timeout conflicts)"
    )
    if conflicts:
        miss(f"{conflicts} audited writes failed on SQLite's busy timeout beside sign-ins")
    kit.dispose()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, times: list[float]) -> str:
    return (
        f"{name:<48} median {statistics.median(times) * 1e3:7.2f} ms  "
        f"p90 {percentile(times, 0.9) * 1e3:7.2f} ms  p99 {percentile(times, 0.99) * 1e3:7.2f} ms"
    )


if __name__ == "__main__":
    main()
    raise SystemExit(verdict())
