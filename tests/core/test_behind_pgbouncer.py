"""Behind PgBouncer in transaction mode: concurrent units of work share server connections.

Runs when ``NGO_KIT_TEST_PGBOUNCER_URL`` names a PgBouncer (``.ci/pgbouncer.sh`` starts one);
an unreachable one fails the session instead of skipping it. Each kit gets a database of its
own behind it: a ``search_path`` set per connection does not follow a client from one
transaction to the next there.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ngo_kit import SYSTEM, Kit
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import DatabaseProvider, run_together, settings_for_tests

PGBOUNCER_URL = os.environ.get("NGO_KIT_TEST_PGBOUNCER_URL", "")
THREADS = 8
UNITS_EACH = 25

pytestmark = pytest.mark.skipif(
    not PGBOUNCER_URL, reason="NGO_KIT_TEST_PGBOUNCER_URL names no PgBouncer"
)


@pytest.fixture(scope="module")
def bouncer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseProvider]:
    """Databases behind the PgBouncer (a session error when it cannot be reached)."""
    provider = DatabaseProvider(PGBOUNCER_URL, Path(tmp_path_factory.mktemp("pgbouncer")))
    assert not provider.schemas, "PgBouncer in transaction mode must not get a schema per kit"
    yield provider
    provider.drop_all()


@pytest.fixture
def points_kit(bouncer: DatabaseProvider) -> Iterator[Callable[..., Kit]]:
    """``make(**settings)``: a kit with the points module on a migrated database behind it."""
    made: list[tuple[Kit, str]] = []

    def build(url: str) -> None:
        builder = Kit(settings=settings_for_tests(url), modules=["points"], autoload=False)
        builder.upgrade()
        builder.dispose()

    def make(**overrides: Any) -> Kit:
        url = bouncer.acquire(("points",), build)
        kit = Kit(
            settings=settings_for_tests(url, pool_size=THREADS, **overrides),
            modules=["points"],
            autoload=False,
        )
        made.append((kit, url))
        return kit

    yield make
    for kit, url in made:
        kit.dispose()
        bouncer.release(("points",), url)


def award_from_threads(kit: Kit, org: OrgRead) -> tuple[list[Any], list[uuid.UUID]]:
    """Each thread awards points to its own member, one unit of work at a time, and reads
    the balance back: the same few statements again and again on every pooled connection."""
    members = [uuid.uuid4() for _ in range(THREADS)]

    def work(i: int) -> list[BaseException]:
        failed: list[BaseException] = []
        for n in range(UNITS_EACH):
            try:
                with kit.begin(org=org, actor=SYSTEM) as tx:
                    tx.points.award(members[i], 2, reason="sorted donations", key=f"{i}:{n}")
                    tx.points.balance(members[i])
            except Exception as exc:  # counted and asserted on by the caller
                failed.append(exc)
        return failed

    return run_together(THREADS, work), members


def test_concurrent_units_of_work_behind_pgbouncer_all_commit(
    points_kit: Callable[..., Kit],
) -> None:
    kit = points_kit()
    org = kit.create_organisation("rainbow", "Rainbow")
    results, members = award_from_threads(kit, org)
    failures = Counter(repr(exc)[:160] for failed in results for exc in failed)
    assert not failures, f"units of work that failed behind PgBouncer: {failures.most_common(5)}"
    with kit.begin(org=org, actor=SYSTEM) as tx:
        balances = [tx.points.balance(m) for m in members]
    assert balances == [2 * UNITS_EACH] * THREADS


def test_prepared_statements_behind_pgbouncer_fail_as_a_pooler_misconfiguration(
    points_kit: Callable[..., Kit],
) -> None:
    """Statements prepared on the server (as psycopg does by default) collide behind the
    pooler; the failures say so (``core.E018``), never "the database is not migrated"."""
    kit = points_kit()
    org = kit.create_organisation("rainbow", "Rainbow")
    eager = Kit(
        settings=kit.settings.model_copy(update={"postgres_prepare_threshold": 0}),
        modules=["points"],
        autoload=False,
    )
    try:
        results, _members = award_from_threads(eager, org)
    finally:
        eager.dispose()
    errors = [exc for failed in results for exc in failed]
    assert errors, "no statement collided: is the pooler in transaction mode?"
    checks = Counter(getattr(exc, "check", repr(exc)[:120]) for exc in errors)
    # a statement run with another client's parameters may fail otherwise (a malformed uuid)
    assert "core.E018" in checks and "core.E015" not in checks, checks
