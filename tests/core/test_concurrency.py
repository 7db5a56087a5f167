"""Units of work that lose a race: a retryable ``TransactionConflict``, never a driver error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Conflict, Kit, TransactionConflict
from ngo_kit.context import Context
from ngo_kit.tenancy import Organisation, OrgRead
from ngo_kit.testing import run_together, settings_for_tests


@pytest.fixture
def orgs(kit: Kit) -> tuple[OrgRead, OrgRead]:
    """Two organisations, whose rows the tests lock."""
    return kit.create_organisation("north", "North"), kit.create_organisation("south", "South")


def lock_row(tx: Context, org: OrgRead) -> None:
    """Take a write lock on ``org``'s row, as any update would."""
    tx.connection.execute(
        sa.update(Organisation).where(Organisation.id == org.id).values(name=Organisation.name)
    )


def second_kit(kit: Kit, **overrides: Any) -> Kit:
    """Another kit (another process, say) on the same database."""
    url = kit.engine.url.render_as_string(hide_password=False)
    return Kit(settings=settings_for_tests(url, **overrides), modules=[], autoload=False)


@pytest.fixture
def impatient(kit: Kit) -> Iterator[Kit]:
    """A kit on the same database that gives up waiting for a lock after a moment."""
    other = second_kit(kit, sqlite_busy_timeout_ms=50)
    yield other
    other.dispose()


def wait_briefly(tx: Context) -> None:
    """Make this unit of work give up waiting for a row lock quickly."""
    dialect = tx.connection.dialect.name
    if dialect == "postgresql":
        tx.connection.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
    elif dialect == "mysql":
        tx.connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")


def test_waiting_too_long_for_a_lock_is_a_transaction_conflict_that_saved_nothing(
    kit: Kit, orgs: tuple[OrgRead, OrgRead], impatient: Kit
) -> None:
    north, _south = orgs
    expected = "busy" if kit.engine.dialect.name == "sqlite" else "lock_timeout"
    with kit.begin(actor=SYSTEM) as holder:
        lock_row(holder, north)
        with pytest.raises(TransactionConflict) as info, impatient.begin(actor=SYSTEM) as tx:
            wait_briefly(tx)
            tx.tenancy.create_organisation(slug="east", name="East")
            lock_row(tx, north)
    error = info.value
    assert isinstance(error, Conflict)
    assert (error.code, error.reason) == ("transaction_conflict", expected)
    assert error.to_dict("en")["code"] == "transaction_conflict"
    assert error.message_in("zh_CN") != error.message_in("en")
    assert not isinstance(error.__cause__, TransactionConflict)  # the driver's error, for logs
    with kit.begin(actor=SYSTEM) as tx:
        assert (
            tx.connection.scalar(
                sa.select(sa.func.count())
                .select_from(Organisation)
                .where(Organisation.slug == "east")
            )
            == 0
        )


def opposite_order_race(
    kit: Kit, first: OrgRead, second: OrgRead, *, in_savepoint: bool = False
) -> list[Any]:
    """Two units of work lock two rows in opposite orders, each holding its first row."""
    both_hold_one = threading.Barrier(2)

    def run(i: int) -> str:
        rows = (first, second) if i == 0 else (second, first)
        with kit.begin(actor=SYSTEM) as tx:
            scope: AbstractContextManager[Any] = tx.savepoint() if in_savepoint else nullcontext()
            with scope:
                lock_row(tx, rows[0])
                both_hold_one.wait(timeout=30)
                lock_row(tx, rows[1])
        return "committed"

    return run_together(2, run, timeout=60)


@pytest.mark.parametrize("in_savepoint", [False, True], ids=["plain", "in-a-savepoint"])
def test_a_deadlock_fails_one_unit_of_work_with_a_transaction_conflict(
    kit: Kit, orgs: tuple[OrgRead, OrgRead], in_savepoint: bool
) -> None:
    if kit.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): two cannot deadlock")
    results = opposite_order_race(kit, *orgs, in_savepoint=in_savepoint)
    assert sorted(map(type, results), key=str) == sorted([str, TransactionConflict], key=str)
    (lost,) = [r for r in results if isinstance(r, TransactionConflict)]
    assert lost.reason == "deadlock"


def test_retrying_runs_a_unit_of_work_again_until_it_wins(
    kit: Kit, orgs: tuple[OrgRead, OrgRead]
) -> None:
    attempts: list[int] = []

    def create_unless_first_tries(tx: Context) -> OrgRead:
        org = tx.tenancy.create_organisation(slug="west", name="West")
        attempts.append(1)
        if len(attempts) < 3:  # as the database would after writing half of it
            raise TransactionConflict("deadlock")
        return org

    west = kit.retrying(create_unless_first_tries, actor=SYSTEM)
    assert len(attempts) == 3
    with kit.begin(org="west", actor=SYSTEM) as tx:
        assert tx.org is not None and tx.org.id == west.id
        assert (
            tx.connection.scalar(
                sa.select(sa.func.count())
                .select_from(Organisation)
                .where(Organisation.slug == "west")
            )
            == 1
        )


def test_retrying_gives_up_after_its_attempts_and_leaves_other_errors_alone(kit: Kit) -> None:
    calls: list[int] = []

    def always_loses(tx: Context) -> None:
        calls.append(1)
        raise TransactionConflict("lock_timeout")

    with pytest.raises(TransactionConflict):
        kit.retrying(always_loses, actor=SYSTEM, attempts=2)
    assert len(calls) == 2

    def refuses(tx: Context) -> None:
        calls.append(1)
        raise Conflict()

    with pytest.raises(Conflict) as info:
        kit.retrying(refuses, actor=SYSTEM)
    assert not isinstance(info.value, TransactionConflict) and len(calls) == 3


def test_units_of_work_that_deadlock_all_commit_through_retrying(
    kit: Kit, orgs: tuple[OrgRead, OrgRead]
) -> None:
    if kit.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): two cannot deadlock")
    north, south = orgs
    both_hold_one = threading.Barrier(2)
    attempts = [0, 0]

    def run(i: int) -> str:
        rows = (north, south) if i else (south, north)

        def lock_both(tx: Context) -> str:
            attempts[i] += 1
            lock_row(tx, rows[0])
            if attempts[i] == 1:  # the first attempts each hold one row: a sure deadlock
                both_hold_one.wait(timeout=30)
            lock_row(tx, rows[1])
            return "committed"

        return kit.retrying(lock_both, actor=SYSTEM, attempts=10)

    assert run_together(2, run) == ["committed"] * 2
    assert sum(attempts) > 2  # the unit of work that lost the deadlock ran again


def test_verify_while_units_of_work_commit_finds_nothing_wrong(kit: Kit) -> None:
    org = kit.create_organisation("busy", "Busy")
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            with kit.begin(org=org, actor=SYSTEM) as tx:
                for _ in range(3):
                    tx.audit("test.wrote", "thing", "1", "a row of a busy day")

    writers = [threading.Thread(target=write) for _ in range(3)]
    for t in writers:
        t.start()
    problems = []
    try:
        for _ in range(20):  # each pass reads the heads, then the rows, of every chain
            problems += kit.verify()
    finally:
        stop.set()
        for t in writers:
            t.join(timeout=60)
    assert problems == []
    assert kit.verify() == []


def test_changing_the_organisation_while_its_members_write_does_not_deadlock(kit: Kit) -> None:
    org = kit.create_organisation("busy", "Busy")
    workers = 8

    def run(i: int) -> str:
        for n in range(10):
            with kit.begin(org=org, actor=SYSTEM) as tx:
                if i % 4 == 0:  # an administrator changing the settings
                    tx.tenancy.update_organisation(settings={"round": f"{i}-{n}"})
                else:  # members whose every write refers to the organisation
                    tx.audit("test.wrote", "thing", str(n), "a row of a busy day")
        return "committed"

    assert run_together(workers, run) == ["committed"] * workers
    assert kit.verify() == []
