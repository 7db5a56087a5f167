"""The Kit: composition, transactions, organisations and start-up checks."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from ngo_kit import SYSTEM, Kit, NotFound, PermissionDenied
from ngo_kit.audit import AuditEntry
from ngo_kit.errors import ConfigurationError, DatabaseUnavailable
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory, SQLiteLockProbe, settings_for_tests


def test_begin_commits_on_success_and_rolls_back_on_error(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.audit("test.kept", "thing", 1, "kept")
    with pytest.raises(RuntimeError), kit.begin(org=org, actor=SYSTEM) as tx:
        tx.audit("test.lost", "thing", 2, "lost")
        raise RuntimeError("boom")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        actions = set(tx.session.scalars(sa.select(AuditEntry.action)))
    assert "test.kept" in actions
    assert "test.lost" not in actions


def test_unknown_organisation_is_not_found(kit: Kit) -> None:
    with pytest.raises(NotFound), kit.begin(org="no-such-org"):
        pass


def test_anonymous_actor_holds_no_permission(kit: Kit, org: OrgRead) -> None:
    with kit.begin(org=org) as tx, pytest.raises(PermissionDenied) as info:
        tx.require("org.manage")
    assert info.value.permission == "org.manage"
    assert "org.manage" in str(info.value)


def test_owner_holds_every_permission_and_member_only_granted_ones(kit: Kit) -> None:
    owner, member = uuid.uuid4(), uuid.uuid4()
    org = kit.create_organisation("rainbow", "Rainbow", owner=owner)
    with kit.begin(org=org, actor=owner) as tx:
        tx.require("roles.manage")
        tx.tenancy.add_member(member, "member")
    with kit.begin(org=org, actor=member) as tx:
        assert not tx.can("roles.manage")
        with pytest.raises(PermissionDenied):
            tx.tenancy.add_member(uuid.uuid4())


def test_on_rollback_runs_after_a_failure_and_on_commit_after_success(
    kit: Kit, org: OrgRead
) -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError), kit.begin(org=org, actor=SYSTEM) as tx:
        tx.on_commit(lambda: events.append("commit-1"))
        tx.on_rollback(lambda: events.append("rollback-1"))
        raise RuntimeError("failed call")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.on_commit(lambda: events.append("commit-2"))
        tx.on_rollback(lambda: events.append("rollback-2"))
    assert events == ["rollback-1", "commit-2"]


def test_an_on_rollback_callback_can_write_what_the_failure_must_leave(
    kit: Kit, org: OrgRead
) -> None:
    def record_failure() -> None:
        with kit.begin(org=org, actor=SYSTEM) as own:
            own.audit("attempt.failed", "account", "x", "a failed attempt is remembered")

    with pytest.raises(PermissionDenied), kit.begin(org=org) as tx:
        tx.on_rollback(record_failure)
        tx.audit("attempt.started", "account", "x", "undone with the failure")
        tx.require("org.manage")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        actions = set(tx.session.scalars(sa.select(AuditEntry.action)))
    assert "attempt.failed" in actions and "attempt.started" not in actions


def test_sqlite_runs_in_wal_with_foreign_keys_busy_timeout_and_immediate_writes(kit: Kit) -> None:
    if kit.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's connection set-up")
    with kit.begin(actor=SYSTEM) as tx:
        pragma = tx.connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == kit.settings.sqlite_busy_timeout_ms
        # BEGIN IMMEDIATE: this transaction holds the write lock before it wrote anything
        probe = SQLiteLockProbe(kit)
        assert not probe.free()
        probe.close()


def test_sqlite_takes_the_write_lock_at_the_first_statement_of_a_unit_of_work(
    kit: Kit, org: OrgRead
) -> None:
    """Work done before the first statement (a password hash) leaves other writers free."""
    if kit.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    probe = SQLiteLockProbe(kit)
    with kit.begin(org=org, actor=SYSTEM) as tx:  # SQLAlchemy's statements
        assert probe.free()
        tx.connection.execute(sa.select(AuditEntry.id)).all()
        assert not probe.free()  # taken by the read: a later write cannot find it gone
    with kit.begin(org=org, actor=SYSTEM) as tx:  # the hot path's driver statements
        tx.audit("test.first", "thing", 1, "the first statement is a chain append")
        assert probe.free()
        tx.flush_audit()
        assert not probe.free()
        with tx.savepoint():
            tx.audit("test.second", "thing", 2, "inside a savepoint")
    with kit.begin(org=org, actor=SYSTEM) as tx:  # a savepoint as the first statement
        assert probe.free()
        with tx.savepoint():
            assert not probe.free()  # BEGIN IMMEDIATE before it, not a deferred transaction
            tx.audit("test.third", "thing", 3, "the first statement is a savepoint")
    assert probe.free()
    probe.close()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        actions = set(tx.session.scalars(sa.select(AuditEntry.action)))
    assert {"test.first", "test.second", "test.third"} <= actions


def test_read_ahead_is_a_lock_free_snapshot_only_before_a_sqlite_unit_of_works_first_statement(
    kit: Kit, org: OrgRead
) -> None:
    sqlite = kit.engine.dialect.name == "sqlite"
    probe = SQLiteLockProbe(kit) if sqlite else None
    with kit.begin(org=org, actor=SYSTEM) as tx:
        with tx.read_ahead() as reading:
            assert reading is sqlite  # elsewhere reads simply go in the tx
            tx.connection.execute(sa.select(AuditEntry.id)).all()
            assert probe is None or probe.free()  # the snapshot holds no write lock
        assert probe is None or probe.free()  # and ends with the block
        tx.audit("test.after_read_ahead", "thing", 1, "written under the lock")
        tx.flush_audit()
        assert probe is None or not probe.free()
        with tx.read_ahead() as reading:
            assert reading is False  # the unit of work has begun: read in it
    with kit.begin(org=org, actor=SYSTEM) as tx:
        pending = AuditEntry()
        tx.session.add(pending)
        with tx.read_ahead() as reading:
            assert reading is False  # unwritten ORM changes would be flushed into the snapshot
        tx.session.expunge(pending)
    if probe is not None:
        probe.close()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        actions = set(tx.session.scalars(sa.select(AuditEntry.action)))
    assert "test.after_read_ahead" in actions


# --- a database that cannot be used: ngo-kit's errors, never the driver's ---------------------


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://nobody@127.0.0.1:1/none", "mysql+pymysql://nobody@127.0.0.1:1/none"],
)
def test_upgrade_and_verify_of_an_unreachable_database_are_database_unavailable(url: str) -> None:
    kit = Kit(settings=settings_for_tests(url), modules=[], autoload=False)
    try:
        with pytest.raises(DatabaseUnavailable):
            kit.upgrade()
        with pytest.raises(DatabaseUnavailable):
            kit.verify()
    finally:
        kit.dispose()


def test_verify_of_a_database_not_migrated_names_core_e015(kit_factory: KitFactory) -> None:
    kit = kit_factory(upgrade=False)
    with pytest.raises(ConfigurationError) as info:
        kit.verify()
    assert info.value.check == "core.E015"


@pytest.mark.parametrize(
    "url", ["not a database url", "postgresql://user:secret@host:port/x", "nosuchdb://host/x"]
)
def test_an_unusable_database_url_is_core_e018_without_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Kit(settings=settings_for_tests(url), modules=[], autoload=False)
    assert info.value.check == "core.E019"
    assert "secret" not in str(info.value) and "secret" not in info.value.message_in("zh_CN")
