"""Helpers for testing with ngo-kit: the test databases, kits on them, and tools for tests.

The fixtures built on them are ngo-kit's pytest plugin, :mod:`ngo_kit.pytest_plugin` (entry
point ``pytest11``), kept apart so that loading it costs a test run nothing. The database comes
from ``NGO_KIT_TEST_DATABASE_URL`` (default: a temporary SQLite file).
Every kit a test makes gets an empty, fully migrated database of its own:

* SQLite: a copy of a template file migrated once per session;
* PostgreSQL: a schema of its own (``search_path``), migrated once and emptied per test; behind
  a pooler that does not carry a connection's ``search_path`` (PgBouncer in transaction mode),
  a database of its own instead;
* MySQL/MariaDB: a database of its own, migrated once (more of them for the same modules are
  re-created from its tables' DDL) and emptied per test.

Kits made here never autoload installed plugins; pass the plugins a test needs.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from ngo_kit.hookspecs import hookimpl
from ngo_kit.kit import Kit, normalise_url
from ngo_kit.outbox import OutboxMessage
from ngo_kit.pytest_plugin import ENV_URL
from ngo_kit.settings import KitSettings

TEST_SECRET = "ngo-kit-test-secret-not-for-production"


def settings_for_tests(database_url: str, **overrides: Any) -> KitSettings:
    """Settings for a kit under test: the ``test`` environment and a non-default secret."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "environment": "test",
        "secret_keys": [TEST_SECRET],
        "outbox_backoff_seconds": 0.01,
    }
    values.update(overrides)
    return KitSettings.model_validate(values)


def run_together(count: int, work: Callable[[int], Any], *, timeout: float = 120) -> list[Any]:
    """Run ``work(0)`` ... ``work(count - 1)`` in ``count`` threads released at once (a barrier):
    real concurrent writers for tests of races. Returns each call's result, or the exception it
    raised, in index order. A thread still running after ``timeout`` seconds fails the call: a
    hang is a finding, not a result."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            start.wait(timeout=timeout)
            results[i] = work(i)
        except BaseException as exc:  # the caller asserts on it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    hung = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not hung, f"threads {hung} of {count} were still running after {timeout} s"
    return results


class SQLiteLockProbe:
    """Tells whether another connection could take a SQLite kit's write lock right now: for
    tests of what holds the lock, and when. Its connection never waits; ``close()`` it."""

    def __init__(self, kit: Kit) -> None:
        self.connection = sqlite3.connect(
            str(kit.engine.url.database), timeout=0, isolation_level=None
        )

    def free(self) -> bool:
        """``True`` if the write lock could be taken (it is released again at once)."""
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        self.connection.execute("ROLLBACK")
        return True

    def close(self) -> None:
        self.connection.close()


class MessageCatcher:
    """A channel plugin that keeps every delivered message in ``messages`` (tries first)."""

    ngo_kit_plugin_name = "ngo_kit.testing.catcher"

    def __init__(self) -> None:
        self.messages: list[OutboxMessage] = []

    @hookimpl(tryfirst=True)
    def ngo_kit_deliver_message(self, message: OutboxMessage) -> str | None:
        self.messages.append(message)
        return "captured"

    def to(self, recipient: str) -> list[OutboxMessage]:
        """The messages sent to ``recipient``, oldest first."""
        return [m for m in self.messages if m.recipient == recipient]


@dataclass
class _Schema:
    """What re-creates a migrated MySQL/MariaDB database: its tables, its migration versions."""

    tables: list[str]
    versions: list[str]


@dataclass
class _Pool:
    free: list[str] = field(default_factory=list)
    schema: _Schema | None = None


class DatabaseProvider:
    """Hands out empty migrated databases; one per kit, reused across tests where safe."""

    def __init__(self, base_url: str | None, workdir: Path) -> None:
        self.base_url = normalise_url(base_url) if base_url else None
        self.workdir = workdir
        self.backend = self.base_url.get_backend_name() if self.base_url else "sqlite"
        self.pools: dict[tuple[Any, ...], _Pool] = {}
        self.created: list[str] = []
        self.counter = 0
        self.tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
        #: PostgreSQL: a schema per kit, or a database per kit where schemas cannot be told apart
        self.schemas = False
        if self.base_url is not None:
            self._check_reachable()
            self.schemas = self.backend == "postgresql" and search_path_follows(self.base_url)

    def _check_reachable(self) -> None:
        assert self.base_url is not None
        engine = sa.create_engine(self.base_url)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            raise pytest.UsageError(
                f"{ENV_URL} names a database that cannot be reached ({self.base_url!r}): {exc.orig}"
            ) from exc
        finally:
            engine.dispose()

    def empty_url(self) -> str:
        """A brand-new database with no tables at all."""
        self.counter += 1
        name = f"ngo_kit_t_{self.tag}_{self.counter}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.sqlite')}"
        self._create(name)
        return self._url_for(name)

    def acquire(self, key: tuple[Any, ...], build: Callable[[str], None]) -> str:
        """A migrated, empty database for ``key`` (the set of modules and plugins)."""
        pool = self.pools.setdefault(key, _Pool())
        if self.backend == "sqlite":
            if not pool.free:
                template = self.empty_url()
                build(template)
                pool.free.append(template)
            self.counter += 1
            target = self.workdir / f"ngo_kit_t_{self.counter}.sqlite"
            shutil.copyfile(_sqlite_path(pool.free[0]), target)
            return f"sqlite:///{target}"
        if pool.free:
            url = pool.free.pop()
            self._empty(url)
        elif pool.schema is not None:
            url = self.empty_url()
            self._replay(url, pool.schema)
        else:
            url = self.empty_url()
            build(url)
            if self.backend == "mysql":
                pool.schema = self._capture(url)
        return url

    def release(self, key: tuple[Any, ...], url: str) -> None:
        """Give a database back to its pool (not for SQLite, whose copies are thrown away)."""
        if self.backend != "sqlite":
            self.pools.setdefault(key, _Pool()).free.append(url)

    def _url_for(self, name: str) -> str:
        assert self.base_url is not None
        if self.schemas:
            url: URL = self.base_url.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            url = self.base_url.set(database=name)
        return url.render_as_string(hide_password=False)

    def _admin(self) -> sa.Engine:
        assert self.base_url is not None
        return sa.create_engine(self.base_url, isolation_level="AUTOCOMMIT")

    def _create(self, name: str) -> None:
        engine = self._admin()
        with engine.connect() as conn:
            if self.schemas:
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            elif self.backend == "postgresql":
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(
                    sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
        engine.dispose()
        self.created.append(name)

    def _empty(self, url: str) -> None:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            names = [n for n in sa.inspect(conn).get_table_names() if n != "alembic_version"]
            if names and self.backend == "postgresql":
                conn.execute(
                    sa.text(
                        "TRUNCATE "
                        + ", ".join(f'"{n}"' for n in names)
                        + " RESTART IDENTITY CASCADE"
                    )
                )
            elif names:
                # DELETE, not TRUNCATE: InnoDB's TRUNCATE re-creates each table (DDL, with its
                # own flushes to disk), about 2 s for the kit's ~60 tables on a busy machine;
                # deleting a test's few rows is one ordinary commit (about 0.07 s).
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=0"))
                for n in names:
                    conn.execute(sa.text(f"DELETE FROM `{n}`"))
                conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=1"))
                # Unlike TRUNCATE this keeps AUTO_INCREMENT counters: the kit's keys are UUIDs,
                # and a test must not rely on a plugin's numbered ids starting at 1.
        engine.dispose()

    def _capture(self, url: str) -> _Schema | None:
        """How to re-create this freshly migrated MySQL/MariaDB database without migrating.

        Replaying the tables' ``SHOW CREATE TABLE`` takes about 0.25 s where the migrations
        take 1 s on an idle machine and several on a busy one, and a session makes a database
        for each set of modules and plugins, and another for each kit alive at the same time.
        ``None`` (migrate every time) when the database holds more than tables: views,
        triggers, routines or events, which the replay would miss.
        """
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                tables: list[str] = []
                for name, kind in conn.exec_driver_sql("SHOW FULL TABLES"):
                    if kind != "BASE TABLE":
                        return None
                    tables.append(str(name))
                others = conn.exec_driver_sql(
                    "SELECT (SELECT COUNT(*) FROM information_schema.triggers"
                    " WHERE trigger_schema = DATABASE())"
                    " + (SELECT COUNT(*) FROM information_schema.routines"
                    " WHERE routine_schema = DATABASE())"
                    " + (SELECT COUNT(*) FROM information_schema.events"
                    " WHERE event_schema = DATABASE())"
                ).scalar_one()
                if others:
                    return None
                ddl = [
                    _AUTO_INCREMENT.sub(
                        "", str(conn.exec_driver_sql(f"SHOW CREATE TABLE `{n}`").one()[1])
                    )
                    for n in tables
                ]
                versions = [
                    str(v)
                    for v in conn.exec_driver_sql(
                        "SELECT version_num FROM alembic_version"
                    ).scalars()
                ]
        finally:
            engine.dispose()
        return _Schema(tables=ddl, versions=versions)

    def _replay(self, url: str, schema: _Schema) -> None:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")  # tables refer to each other
                for ddl in schema.tables:
                    conn.exec_driver_sql(ddl)
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
                if schema.versions:
                    conn.execute(
                        sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                        [{"v": v} for v in schema.versions],
                    )
        finally:
            engine.dispose()

    def drop_all(self) -> None:
        """Drop every schema or database this session created."""
        if self.backend == "sqlite" or not self.created:
            return
        engine = self._admin()
        with engine.connect() as conn:
            for name in self.created:
                if self.schemas:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                elif self.backend == "postgresql":  # a pooler may still hold connections to it
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def search_path_follows(url: str | URL) -> bool:
    """Whether a ``search_path`` given in the URL (``options=-csearch_path=...``) holds for
    every transaction on this PostgreSQL URL.

    Not behind a pooler in transaction mode, which refuses the startup option, ignores it
    (``ignore_startup_parameters = options``) or lends each transaction another server
    connection, whose ``search_path`` is not the client's.
    """
    probe = f"ngo_kit_probe_{uuid.uuid4().hex[:8]}"
    target = normalise_url(url).update_query_dict({"options": f"-csearch_path={probe}"})
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SHOW search_path")).scalar() == probe)
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


#: A table option SHOW CREATE TABLE prints once rows were written; a replayed table starts at 1.
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")


def _sqlite_path(url: str) -> str:
    return str(sa.engine.make_url(url).database)


# --- kits for tests (the fixtures themselves are in ngo_kit.pytest_plugin) ----------------

KitFactory = Callable[..., Kit]


@contextmanager
def kits_on(databases: DatabaseProvider, message_catcher: MessageCatcher) -> Iterator[KitFactory]:
    """What the ``kit_factory`` fixture yields: ``make(modules=None, plugins=(), upgrade=True,
    **settings)`` -> a Kit on an empty database from ``databases``; every kit made is disposed
    and its database given back when the block ends."""
    made: list[tuple[Kit, tuple[Any, ...] | None, str]] = []

    def make(
        modules: Sequence[str] | None = None,
        plugins: Sequence[object] = (),
        *,
        upgrade: bool = True,
        catch_messages: bool = True,
        **overrides: Any,
    ) -> Kit:
        all_plugins = [*plugins, message_catcher] if catch_messages else list(plugins)
        key = (
            tuple(modules) if modules is not None else None,
            tuple(sorted(_plugin_key(p) for p in plugins)),
        )

        def build(url: str) -> None:
            builder = Kit(
                settings=settings_for_tests(url, **overrides),
                modules=modules,
                plugins=list(plugins),
                autoload=False,
            )
            builder.upgrade()
            builder.dispose()

        url = databases.acquire(key, build) if upgrade else databases.empty_url()
        kit = Kit(
            settings=settings_for_tests(url, **overrides),
            modules=modules,
            plugins=all_plugins,
            autoload=False,
        )
        made.append((kit, key if upgrade else None, url))
        return kit

    try:
        yield make
    finally:
        for kit, pooled_key, url in made:
            kit.dispose()
            if pooled_key is not None:  # only migrated databases go back to the pool
                databases.release(pooled_key, url)


def _plugin_key(plugin: object) -> str:
    return (
        getattr(plugin, "ngo_kit_plugin_name", None)
        or getattr(plugin, "__name__", None)
        or type(plugin).__qualname__
    )
