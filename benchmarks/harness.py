"""Ratio benchmarks: a kit operation against raw SQL doing the same writes, in the same run.

Absolute times on shared machines are noise; the ratio of the two, measured interleaved in one
process, is the figure: the median of per-round ratios, with their spread and the load average.
The garbage collector stays on. A script exits 1 when it missed one of its goals (``verdict``),
so ``make bench`` fails. Run with ``make bench`` or ``python benchmarks/<file>.py``. The database
comes from ``NGO_KIT_BENCH_DATABASE_URL`` (default: a temporary SQLite file).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ngo_kit import Kit


@dataclass
class Comparison:
    """Timings of the kit and the baseline, per round, and their ratio (kit / baseline).

    ``ratio`` is the median of the rounds' ratios (each round: median kit time over median
    baseline time); ``spread`` their lowest and highest; ``load`` the machine's one-minute load
    average when the comparison ended, since a busy machine widens the spread.
    """

    name: str
    kit_seconds: list[float]
    raw_seconds: list[float]
    round_ratios: list[float] = field(default_factory=list)
    load: float = 0.0

    @property
    def kit_median(self) -> float:
        return statistics.median(self.kit_seconds)

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw_seconds)

    @property
    def ratio(self) -> float:
        if self.round_ratios:
            return statistics.median(self.round_ratios)
        return self.kit_median / self.raw_median

    @property
    def spread(self) -> tuple[float, float]:
        ratios = self.round_ratios or [self.ratio]
        return min(ratios), max(ratios)

    def line(self, limit: float | None = None) -> str:
        """One report line; a ratio over ``limit`` is recorded as a missed goal (``verdict``)."""
        low, high = self.spread
        if limit is None:
            verdict = ""
        elif self.ratio <= limit:
            verdict = "  ok"
        else:
            verdict = f"  OVER the {limit}x goal"
            MISSED.append(f"{self.name}: {self.ratio:.2f}x > {limit}x")
        return (
            f"{self.name:<48} kit {self.kit_median * 1e3:9.3f} ms  raw {self.raw_median * 1e3:9.3f} ms"
            f"  ratio {self.ratio:5.2f}x [{low:.2f}-{high:.2f}, {len(self.round_ratios)} rounds,"
            f" load {self.load:.1f}]{'' if limit is None else f' (goal <= {limit}x)'}{verdict}"
        )


#: The goals a run missed, in the order they were reported (see ``verdict``).
MISSED: list[str] = []


def miss(goal: str) -> None:
    """Record a missed goal that is not a ratio line (a scale test's own check)."""
    MISSED.append(goal)


def verdict() -> int:
    """The exit status of a benchmark script: 1, after listing them, when a goal was missed."""
    if not MISSED:
        return 0
    print(f"{len(MISSED)} goal(s) missed:", *MISSED, sep="\n  ", file=sys.stderr)
    return 1


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (C allocations included)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def load_average() -> float:
    """The one-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


#: OWASP's argon2id parameters (m=19 MiB, t=2, p=1), which the registration benchmarks use.
OWASP_ARGON2 = (19456, 2, 1)


def use_owasp_argon2() -> tuple[int, int, int]:
    """Set the registration module's argon2id settings to ``OWASP_ARGON2`` (before a kit is
    built); returns ``(memory KiB, time cost, parallelism)`` for the bare baseline."""
    memory, time_cost, parallelism = OWASP_ARGON2
    os.environ.update(
        NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB=str(memory),
        NGO_KIT_REGISTRATION_ARGON2_TIME_COST=str(time_cost),
        NGO_KIT_REGISTRATION_ARGON2_PARALLELISM=str(parallelism),
    )
    return OWASP_ARGON2


def timed(func: Callable[[], object]) -> float:
    """Seconds one call takes (perf_counter)."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def compare(
    name: str,
    kit_op: Callable[[], object],
    raw_op: Callable[[], object],
    *,
    repeat: int = 210,
    warmup: int = 20,
    rounds: int = 7,
) -> Comparison:
    """Run both operations ``repeat`` times in all, alternating which goes first, in ``rounds``
    rounds, after ``warmup`` calls of each. The garbage collector stays on: the kit's
    allocations are part of its cost."""
    for _ in range(warmup):
        kit_op()
        raw_op()
    per_round = max(1, repeat // rounds)
    kit_times: list[float] = []
    raw_times: list[float] = []
    ratios: list[float] = []
    for round_ in range(rounds):
        kit_round: list[float] = []
        raw_round: list[float] = []
        for i in range(per_round):
            if (round_ + i) % 2:
                kit_round.append(timed(kit_op))
                raw_round.append(timed(raw_op))
            else:
                raw_round.append(timed(raw_op))
                kit_round.append(timed(kit_op))
        ratios.append(statistics.median(kit_round) / statistics.median(raw_round))
        kit_times += kit_round
        raw_times += raw_round
    return Comparison(name, kit_times, raw_times, ratios, load_average())


def kit_problems(kit: Kit) -> list[Any]:
    """What ``kit.verify()`` finds, but in the baseline's organisations (a ``raw`` part in the
    slug: ``bench-raw``): their rows are hashed without the deployment's chain key, which
    ``verify`` rightly reports; the kit's own organisations must verify clean."""
    from ngo_kit import SYSTEM

    with kit.begin(actor=SYSTEM) as tx:
        orgs = tx.tenancy.list_organisations()
    raw = {org.id for org in orgs if "raw" in org.slug.split("-")}
    return [problem for problem in kit.verify() if problem.org_id not in raw]


def bench_database_url(name: str) -> str:
    """The database for a benchmark: ``NGO_KIT_BENCH_DATABASE_URL`` or a fresh SQLite file."""
    url = os.environ.get("NGO_KIT_BENCH_DATABASE_URL")
    if url:
        return url
    folder = Path(tempfile.mkdtemp(prefix="ngo_kit_bench_"))
    return f"sqlite:///{folder / (name + '.sqlite')}"


def fresh_database(name: str) -> str:
    """An empty database for one benchmark: a new SQLite file or a new PostgreSQL schema."""
    from ngo_kit.testing import DatabaseProvider

    base = os.environ.get("NGO_KIT_BENCH_DATABASE_URL") or None
    provider = DatabaseProvider(base, Path(tempfile.mkdtemp(prefix=f"ngo_kit_bench_{name}_")))
    return provider.empty_url()
