"""The Kit: the composition root that owns settings, the engine, the plugins and the modules."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pluggy
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session

from ngo_kit import checkpoints, i18n
from ngo_kit.audit import ChainCheck, Problem
from ngo_kit.chain_keys import ChainKeys
from ngo_kit.checkpoints import Checkpoint
from ngo_kit.context import CORE_SERVICES, Context, database_errors, translate_database_errors
from ngo_kit.db import sqlite_start, utcnow
from ngo_kit.errors import (
    ConfigurationError,
    IntegrityFailed,
    NgoKitError,
    NotFound,
    TransactionConflict,
)
from ngo_kit.outbox import Outbox
from ngo_kit.plugins import (
    Channel,
    Module,
    Permission,
    PluginInfo,
    Registrar,
    check_packages,
    collect,
    import_models,
    load_entry_points,
    new_plugin_manager,
    resolve_order,
    tables_by_module,
    usable_modules,
)
from ngo_kit.settings import MIN_SECRET_LENGTH, KitSettings, public_url_problem
from ngo_kit.tenancy import SYSTEM, Actor, KeyActor, Organisation, OrgRead, SystemActor

log = logging.getLogger("ngo_kit")

T = TypeVar("T")
#: ``kit.retrying`` pauses a random time up to this many seconds, doubled after each attempt,
#: so units of work that collided do not collide again in step.
RETRY_PAUSE_SECONDS = 0.02

CORE_MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class Kit:
    """Build once per process; ``with kit.begin(org=..., actor=...) as tx:`` for each unit of work.

    ``database_url`` defaults to ``NGO_KIT_DATABASE_URL`` (else ``sqlite:///ngo_kit.db``);
    ``modules=None`` enables every installed module whose packages are installed (its extra,
    ``pip install 'ngo-kit[volunteer]'``); a module named in ``modules`` without them is
    refused (``core.E040``); ``plugins`` are extra plugin objects;
    ``autoload=False`` (or ``NGO_KIT_DISABLE_PLUGIN_AUTOLOAD=1``) loads only ngo-kit's own.
    Start-up refuses a broken set-up with ``ConfigurationError`` naming the culprit.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        modules: Sequence[str] | None = None,
        plugins: Iterable[object] = (),
        settings: KitSettings | None = None,
        autoload: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings or KitSettings()
        if database_url is not None:
            self.settings = self.settings.model_copy(update={"database_url": database_url})
        self.pm: pluggy.PluginManager = new_plugin_manager()
        autoload = autoload and not self.settings.disable_plugin_autoload
        self.distributions = load_entry_points(self.pm, autoload=autoload)
        self.extra_plugins: list[str] = []
        for plugin in plugins:
            name = self.pm.register(plugin, name=_plugin_name(plugin))
            if name:
                self.extra_plugins.append(name)
        self.available_modules = self._collect_modules()
        declared = {k: v.item for k, v in self.available_modules.items()}
        wanted = usable_modules(declared) if modules is None else list(modules)
        ordered = resolve_order(declared, wanted)
        self.modules: dict[str, Module] = {m.name: m for m in ordered}
        self._drop_disabled_module_plugins()
        for module in ordered:
            check_packages(module)
        for module in ordered:
            if module.hookspecs is not None:
                self.pm.add_hookspecs(module.hookspecs)
            import_models(module)
            if module.locale_dir is not None:
                i18n.load_catalogues(module.locale_dir)
        self._check_hooks()
        permissions = Registrar("permission", Permission, lambda p: p.name)
        checks = Registrar("check", object, lambda c: str(getattr(c, "name", c)))
        for module in ordered:
            permissions.current_plugin = checks.current_plugin = self.available_modules[
                module.name
            ].plugin
            for permission in module.permissions:
                permissions(permission)
            for check in module.checks:
                checks(check)
        collect(self.pm, "ngo_kit_register_permissions", permissions)
        collect(self.pm, "ngo_kit_register_checks", checks)
        self.permissions: dict[str, Permission] = {p.name: p for p in permissions.values()}
        self.checks = checks.values()
        self.channels: dict[str, Channel] = {
            c.name: c
            for c in collect(
                self.pm,
                "ngo_kit_register_channels",
                Registrar("channel", Channel, lambda c: c.name),
            ).values()
        }
        self._check_settings()
        #: the keys chain rows are hashed with (``ngo_kit.chain_keys``)
        self.chain_keys = ChainKeys.from_settings(self.settings)
        self._check_chains()
        for module in self.modules.values():
            if module.configure is not None:
                module.configure(self)
        self.engine = engine or create_engine(self.settings)
        self.outbox = Outbox(self)
        self._org_cache: dict[object, tuple[float, OrgRead]] = {}

    # --- start-up --------------------------------------------------------------------------

    def _collect_modules(self) -> dict[str, Any]:
        registrar: Registrar[Module] = Registrar("module", Module, lambda m: m.name)
        collect(self.pm, "ngo_kit_register_modules", registrar)
        if "core" in registrar.items:
            raise ConfigurationError(
                "core.E002", "module name 'core' is reserved for ngo-kit's core"
            )
        for name in CORE_SERVICES:
            if name in registrar.items:  # tx.<name> is core's service: the module's would hide
                raise ConfigurationError(
                    "core.E002",
                    "module name '{name}' is reserved for core's service tx.{name}",
                    name=name,
                )
        return dict(registrar.items)

    def _drop_disabled_module_plugins(self) -> None:
        providers: dict[str, set[str]] = {}
        for name, reg in self.available_modules.items():
            providers.setdefault(reg.plugin, set()).add(name)
        for plugin_name, names in providers.items():
            if not names & set(self.modules):
                plugin = self.pm.get_plugin(plugin_name)
                if plugin is not None:
                    self.pm.unregister(plugin)

    def _check_hooks(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise ConfigurationError(
                "core.E011",
                "plugin '{plugin}' implements a hook no enabled module specifies: {error}",
                plugin=self.pm.get_name(exc.plugin) or "?",
                error=str(exc),
            ) from exc

    def _check_settings(self) -> None:
        s = self.settings
        if not self.settings.secret_keys:
            raise ConfigurationError(
                "core.E016", "no secret key is set: NGO_KIT_SECRET_KEYS is empty"
            )
        if s.environment != "development" and s.uses_default_secret:
            raise ConfigurationError(
                "core.E012",
                "the default secret key is refused outside development; set NGO_KIT_SECRET_KEYS",
            )
        senders_enabled = any(m.sends_messages for m in self.modules.values())
        has_channel = any(c.production_ready for c in self.channels.values())
        if s.environment == "production" and senders_enabled and not has_channel:
            senders = ", ".join(m.name for m in self.modules.values() if m.sends_messages)
            raise ConfigurationError(
                "core.E007",
                "modules {senders} send messages but no production-ready channel is installed "
                "(the console channel is for development)",
                senders=senders,
            )
        if s.environment == "production" and s.short_secret_positions:
            raise ConfigurationError(
                "core.E013",
                "secret key {positions} of NGO_KIT_SECRET_KEYS is shorter than {length} "
                "characters, which production refuses",
                positions=", ".join(f"#{n}" for n in s.short_secret_positions),
                length=MIN_SECRET_LENGTH,
            )

        if s.public_base_url is not None:
            problem = public_url_problem(s.public_base_url)
            if problem is not None:
                raise ConfigurationError("core.E022", problem, url=repr(s.public_base_url[:200]))

    def _check_chains(self) -> None:
        for check in self.checks:
            if isinstance(check, ChainCheck) and "key_id" not in check.table.c:
                raise ConfigurationError(
                    "core.E021",
                    "chained table {table} (check '{name}') has no key_id column for the id "
                    "of the chain key its rows are hashed with",
                    table=check.table.name,
                    name=check.name,
                )

    # --- units of work ----------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The plugin manager's hook caller (``kit.hook.ngo_kit_...``)."""
        return self.pm.hook

    @contextmanager
    def begin(
        self,
        org: str | uuid.UUID | OrgRead | None = None,
        actor: Actor | str = None,
        *,
        locale: str | None = None,
    ) -> Iterator[Context]:
        """One database transaction as a ``Context``: commit on success, roll back on any error.

        ``org`` is a slug, id or ``OrgRead``; ``actor`` an account id, ``SYSTEM`` or ``None``
        (anonymous). Messages sent in the block are dispatched after the commit.
        """
        actor = _actor(actor)
        token = i18n.set_locale(locale or self.settings.default_locale)
        tx: Context | None = None
        try:
            with self.engine.connect() as connection, connection.begin():
                org_read = self._resolve_org(connection, org)
                if org_read is not None and locale is None:
                    i18n.set_locale(org_read.locale)
                tx = Context(self, connection, org_read, actor)
                yield tx
                tx.finish()
        except sa.exc.DBAPIError as exc:
            if tx is not None:
                tx.run_after_rollback()
            raise translate_database_errors(exc) from exc
        except BaseException:
            if tx is not None:
                tx.run_after_rollback()
            raise
        else:
            assert tx is not None
            self._after_commit(tx)
        finally:
            if tx is not None:
                tx.close()
            i18n.reset_locale(token)

    def retrying(
        self,
        work: Callable[[Context], T],
        *,
        org: str | uuid.UUID | OrgRead | None = None,
        actor: Actor | str = None,
        locale: str | None = None,
        attempts: int = 3,
    ) -> T:
        """Run ``work(tx)`` in a unit of work of its own, again when it loses a race.

        Each attempt is a fresh ``kit.begin(org=org, actor=actor, locale=locale)``. An attempt
        that fails with ``TransactionConflict`` (a deadlock, a lock wait that timed out, a
        serialization failure, SQLite busy) left nothing behind, so it runs again after a short
        random pause, up to ``attempts`` times in all; the last conflict, and any other error,
        is raised. Returns what ``work`` returned. ``work`` must not act outside the database in
        a way it cannot repeat (messages sent with ``tx.send`` go out after the commit only).
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        attempt = 1
        while True:
            try:
                with self.begin(org, actor, locale=locale) as tx:
                    return work(tx)
            except TransactionConflict:
                if attempt >= attempts:
                    raise
            time.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * 2**attempt))
            attempt += 1

    def _after_commit(self, tx: Context) -> None:
        now = [i for i in tx.sent if i not in tx.deferred]
        if now and self.settings.outbox_dispatch_after_commit:
            try:
                self.outbox.dispatch(now)
            except Exception:  # delivery is retried by the worker; the commit stands
                log.exception("dispatch after commit failed; the outbox worker will retry")
        tx.run_after_commit()

    def _resolve_org(
        self, connection: sa.Connection, org: str | uuid.UUID | OrgRead | None
    ) -> OrgRead | None:
        """Look the organisation up, through a short per-process cache (``org_cache_seconds``).

        Slugs and ids never change, so the cache can only be stale about name, locale, time
        zone and settings, for at most ``org_cache_seconds``; changes made through this kit
        refresh it at once.
        """
        if org is None:
            return None
        key = org.id if isinstance(org, OrgRead) else org
        now = time.monotonic()
        cached = self._org_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        column = Organisation.id if isinstance(key, uuid.UUID) else Organisation.slug
        row = connection.execute(_ORG_SELECT.where(column == key)).first()
        if row is None:
            raise NotFound("Organisation", key)
        found = OrgRead.model_validate(row._mapping)
        self.remember_org(found)
        return found

    def remember_org(self, org: OrgRead) -> None:
        """Put ``org`` in this process's organisation cache (after a create or an update)."""
        ttl = self.settings.org_cache_seconds
        if ttl <= 0:
            return
        expires = time.monotonic() + ttl
        self._org_cache[org.id] = (expires, org)
        self._org_cache[org.slug] = (expires, org)

    def create_organisation(
        self, slug: str, name: str, *, owner: uuid.UUID | None = None, **fields: Any
    ) -> OrgRead:
        """Create an organisation (as the system actor), optionally with its first owner."""
        with self.begin(actor=SYSTEM) as tx:
            return tx.tenancy.create_organisation(slug=slug, name=name, owner=owner, **fields)

    # --- schema, integrity, introspection ----------------------------------------------------

    def upgrade(self, target: str = "heads") -> None:
        """Apply migrations of core and every enabled module (``ngo-kit db upgrade``)."""
        from ngo_kit import migrations

        migrations.upgrade(self, target)

    def version_locations(self) -> dict[str, Path]:
        """The Alembic version folder of core and of each enabled module, by branch name."""
        locations = {"core": CORE_MIGRATIONS}
        for module in self.modules.values():
            if module.migrations is not None:
                locations[module.name] = Path(module.migrations)
        return locations

    def tables_by_module(self) -> dict[str, list[str]]:
        """The tables of core and of each enabled module.

        Ownership is decided among every installed module, so the tables of a disabled
        ``volunteer_points`` are never taken for the enabled ``volunteer``'s.
        """
        owned = tables_by_module(["core", *self.available_modules])
        return {
            name: tables for name, tables in owned.items() if name == "core" or name in self.modules
        }

    def table_names(self) -> list[str]:
        """The tables that core and the enabled modules own."""
        return [t for names in self.tables_by_module().values() for t in names]

    def metadata(self) -> sa.MetaData:
        """A metadata holding only the tables of core and the enabled modules."""
        from ngo_kit.db import Base

        subset = sa.MetaData(naming_convention=Base.metadata.naming_convention)
        for name in self.table_names():
            Base.metadata.tables[name].to_metadata(subset)
        return subset

    def verify(self, against: Path | str | Checkpoint | None = None) -> list[Problem]:
        """Run every registered integrity check; an empty list means all is whole.

        Chain hashes are recomputed with the chain keys (``NGO_KIT_CHAIN_KEYS``). ``against``
        is a checkpoint (``kit.anchor``; a file, a directory holding them, whose newest is
        used, or a loaded ``Checkpoint``): each chain must still pass through the heads it
        recorded, with the same hashes, and must not end before them. Raises
        ``CheckpointRefused`` for a checkpoint whose signature does not match.

        Raises ``DatabaseUnavailable`` when the database cannot be reached, and
        ``ConfigurationError`` ``core.E015`` when it is not migrated.

        The checks read one snapshot of the database, so units of work committing meanwhile
        are never mistaken for tampering: ``REPEATABLE READ`` on PostgreSQL and MySQL/MariaDB
        (where the kit otherwise reads committed rows statement by statement), a deferred
        read transaction on SQLite (which leaves writers free to go on).
        """
        checkpoint = (
            against
            if against is None or isinstance(against, Checkpoint)
            else checkpoints.load(against, self.chain_keys)
        )
        with self._snapshot() as session:
            return self._run_checks(session, checkpoint)

    def anchor(
        self, to: Path | str | None = None, send: Iterable[tuple[str, str]] = ()
    ) -> Checkpoint:
        """Take a signed checkpoint of every chain's head and keep it outside the database.

        The chains are verified first, in the snapshot the heads are read from; problems raise
        ``IntegrityFailed`` and nothing is written. ``to`` is a file to write, or a directory
        to add a timestamped file to; ``send`` lists ``(channel, recipient)`` pairs that get the
        checkpoint through the outbox (an email or webhook address kept by someone else). Run
        it on a schedule (``ngo-kit anchor`` from cron); returns the checkpoint.
        """
        with self._snapshot() as session:
            problems = self._run_checks(session, None)
            if problems:
                raise IntegrityFailed(count=len(problems), first=str(problems[0]))
            heads = checkpoints.read_heads(session, self.checks)
        checkpoint = checkpoints.sign(heads, self.chain_keys, utcnow())
        if to is not None:
            checkpoints.write(checkpoint, Path(to))
        targets = list(send)
        if targets:
            with self.begin(actor=SYSTEM) as tx:
                for channel, recipient in targets:
                    tx.send(
                        channel,
                        recipient,
                        f"ngo-kit checkpoint {checkpoint.label}",
                        checkpoint.to_json(),
                        data={"checkpoint": json.loads(checkpoint.to_json())},
                    )
        return checkpoint

    @contextmanager
    def _snapshot(self) -> Iterator[Session]:
        if self.engine.dialect.name == "sqlite":
            snapshot = self.engine.execution_options(sqlite_begin="DEFERRED")
        else:
            snapshot = self.engine.execution_options(isolation_level="REPEATABLE READ")
        with database_errors(), Session(snapshot) as session, session.begin():
            yield session

    def _run_checks(self, session: Session, checkpoint: Checkpoint | None) -> list[Problem]:
        problems: list[Problem] = []
        for check in self.checks:
            if isinstance(check, ChainCheck):
                problems.extend(
                    check.run(
                        session,
                        keys=self.chain_keys,
                        anchored=checkpoint.heads_of(check.chain) if checkpoint else None,
                        anchored_at=checkpoint.label if checkpoint else "",
                    )
                )
            else:
                problems.extend(check.run(session))  # type: ignore[attr-defined]
        return problems

    def plugin_info(self) -> list[PluginInfo]:
        """Every loaded plugin: distribution, version, modules provided and hooks implemented."""
        infos: dict[str, PluginInfo] = {}
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist = self.distributions.get(name)
            infos[name] = PluginInfo(
                name=name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                builtin=bool(dist and dist.name.replace("_", "-").lower() == "ngo-kit"),
            )
        for caller in self.pm.hook.__dict__.values():
            if not isinstance(caller, pluggy.HookCaller):
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name in infos:
                    infos[impl.plugin_name].hooks.append(caller.name)
        for module_name, reg in self.available_modules.items():
            if reg.plugin in infos and module_name in self.modules:
                infos[reg.plugin].modules.append(module_name)
        for info in infos.values():
            info.hooks.sort()
        return sorted(infos.values(), key=lambda i: (not i.builtin, i.name))

    def dispose(self) -> None:
        """Close the engine's connections."""
        self.engine.dispose()


_ORG_SELECT = sa.select(*Organisation.__table__.c)


def _plugin_name(plugin: object) -> str:
    name = getattr(plugin, "ngo_kit_plugin_name", None) or getattr(plugin, "__name__", None)
    return str(name or f"{type(plugin).__module__}.{type(plugin).__qualname__}@{id(plugin):x}")


def _actor(actor: Actor | str) -> Actor:
    if actor is None or isinstance(actor, uuid.UUID | SystemActor | KeyActor):
        return actor
    if actor == "system":
        return SYSTEM
    try:
        return uuid.UUID(str(actor))
    except ValueError:
        raise NgoKitError(
            "Unknown actor {actor!r}: give an account id, SYSTEM or None.", actor=actor
        ) from None


def normalise_url(url: str | URL) -> URL:
    """Choose ngo-kit's drivers: psycopg 3 for PostgreSQL, PyMySQL for MySQL/MariaDB.

    A URL that cannot be parsed is ``ConfigurationError`` ``core.E019`` (its text, which may
    hold a password, is not repeated).
    """
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigurationError(
            "core.E019",
            "the database URL cannot be read: expected dialect+driver://user:password@host/name",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername="mysql+pymysql")
    elif parsed.get_backend_name() == "mariadb":  # one dialect name for the kit's MySQL set-up;
        parsed = parsed.set(drivername=f"mysql+{parsed.get_driver_name()}")  # it finds MariaDB
    return parsed


def create_engine(settings: KitSettings) -> Engine:
    """An engine set up for the dialect.

    SQLite: WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` so concurrent writers
    queue instead of failing with "database is locked". PostgreSQL: psycopg 3, statements
    prepared on the server only when ``postgres_prepare_threshold`` says so (see "Behind
    PgBouncer" in docs/scaling.md).
    MySQL/MariaDB: PyMySQL, READ COMMITTED, utf8mb4.
    """
    url = normalise_url(settings.database_url)
    backend = url.get_backend_name()
    # Statement parameters hold personal data (emails, names): outside development they are
    # left out of SQL logging and of the text of database errors, which tracebacks log.
    kwargs: dict[str, Any] = {
        "echo": settings.echo_sql,
        "hide_parameters": settings.environment != "development",
    }
    if backend == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
            "check_same_thread": False,
        }
        engine = _engine(url, kwargs)
        _sqlite_events(engine, settings, in_memory=database in ("", ":memory:"))
        return engine
    kwargs.update(
        pool_pre_ping=settings.pool_pre_ping,
        pool_recycle=settings.pool_recycle_seconds,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size * 2,
    )
    if url.drivername == "postgresql+psycopg":
        # psycopg names the statements it prepares _pg3_0, _pg3_1... per connection: behind a
        # pooler in transaction mode, clients share server connections and run one another's.
        kwargs["connect_args"] = {"prepare_threshold": settings.postgres_prepare_threshold}
    if backend == "mysql":
        kwargs["isolation_level"] = "READ COMMITTED"
        url = url.update_query_dict({"charset": "utf8mb4"})
    return _engine(url, kwargs)


def _engine(url: URL, kwargs: dict[str, Any]) -> Engine:
    try:
        return sa.create_engine(url, **kwargs)
    except sa.exc.NoSuchModuleError:
        raise ConfigurationError(
            "core.E019",
            "the database URL names no installed database driver: {driver}",
            driver=url.drivername,
        ) from None


def _sqlite_events(engine: Engine, settings: KitSettings, *, in_memory: bool) -> None:
    busy = int(settings.sqlite_busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # ngo-kit emits BEGIN itself, below
        cur = dbapi_conn.cursor()
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy}")
        cur.close()

    @event.listens_for(engine, "before_cursor_execute")
    def _begin(conn: Any, *_args: Any) -> None:
        sqlite_start(conn)
