"""Ratio benchmarks: a kit operation against raw SQL doing the same writes, in the same run.

Absolute times on shared machines are noise; the ratio of the two, measured interleaved in one
process, is the figure. Run with ``make bench`` or ``python benchmarks/<file>.py``. The database
comes from ``NGO_KIT_BENCH_DATABASE_URL`` (default: a temporary SQLite file).
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Comparison:
    """Timings of the kit and the baseline, and their ratio (kit / baseline)."""

    name: str
    kit_seconds: list[float]
    raw_seconds: list[float]

    @property
    def kit_median(self) -> float:
        return statistics.median(self.kit_seconds)

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw_seconds)

    @property
    def ratio(self) -> float:
        return self.kit_median / self.raw_median

    def line(self, limit: float | None = None) -> str:
        verdict = (
            ""
            if limit is None
            else ("  ok" if self.ratio <= limit else f"  OVER the {limit}x target")
        )
        return (
            f"{self.name:<48} kit {self.kit_median * 1e3:9.3f} ms  raw {self.raw_median * 1e3:9.3f} ms"
            f"  ratio {self.ratio:5.2f}x{'' if limit is None else f' (target <= {limit}x)'}{verdict}"
        )


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
    repeat: int = 200,
    warmup: int = 20,
) -> Comparison:
    """Run both operations ``repeat`` times, alternating, after ``warmup`` rounds; keep medians."""
    for _ in range(warmup):
        kit_op()
        raw_op()
    kit_times: list[float] = []
    raw_times: list[float] = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeat):
            if i % 2:
                kit_times.append(timed(kit_op))
                raw_times.append(timed(raw_op))
            else:
                raw_times.append(timed(raw_op))
                kit_times.append(timed(kit_op))
    finally:
        if gc_was:
            gc.enable()
    return Comparison(name, kit_times, raw_times)


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
