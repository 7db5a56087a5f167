"""The Context (``tx``): one transaction, one organisation, one actor, and the services."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ngo_kit import audit, outbox
from ngo_kit.api_keys import ApiKeysService
from ngo_kit.db import SQLITE_BEGIN, sqlite_unstarted
from ngo_kit.errors import (
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    NgoKitError,
    NotFound,
    PermissionDenied,
    SelfActionRefused,
    TransactionConflict,
)
from ngo_kit.events import EventsService
from ngo_kit.i18n import current_locale
from ngo_kit.plugins import call_event
from ngo_kit.statements import insert_rows
from ngo_kit.tenancy import (
    ALL_PERMISSIONS,
    SYSTEM,
    Actor,
    KeyActor,
    OrgRead,
    SystemActor,
    TenancyService,
    self_actions,
    undeclared,
)

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

log = logging.getLogger("ngo_kit")

#: The services core provides on every ``tx``, besides those of the enabled modules.
CORE_SERVICES: dict[str, Callable[[Context], Any]] = {
    "tenancy": TenancyService,
    "api_keys": ApiKeysService,
    "events": EventsService,
}


class Context:
    """What ``kit.begin()`` yields: the transaction and everything a service needs.

    * ``tx.connection``: the SQLAlchemy ``Connection`` in this transaction (Core statements);
    * ``tx.session``: an ORM ``Session`` on that same connection and transaction (made on first use);
    * ``tx.org`` / ``tx.org_id``: the organisation, ``tx.actor``: who acts;
    * ``tx.<module>`` (``tx.points``...) or ``tx.service(name)``: module services;
    * ``tx.require(permission)``, ``tx.audit(...)``, ``tx.send(...)``, ``tx.emit(hook, ...)``.
    """

    def __init__(
        self, kit: Kit, connection: sa.Connection, org: OrgRead | None, actor: Actor
    ) -> None:
        self.kit = kit
        self.connection = connection
        self._session: Session | None = None
        self.org = org
        self.actor = actor
        self._services: dict[str, Any] = {}
        self._audit: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []
        self._granted: frozenset[str] | None = None
        self._elevated = 0
        self.sent: list[uuid.UUID] = []
        #: messages among ``sent`` left to the outbox worker (``tx.send(..., deferred=True)``)
        self.deferred: set[uuid.UUID] = set()
        self._after_commit: list[Callable[[], None]] = []
        self._after_rollback: list[Callable[[], None]] = []

    @property
    def session(self) -> Session:
        """The ORM session of this transaction (bound to ``tx.connection``)."""
        if self._session is None:
            self._session = Session(bind=self.connection, autoflush=False, expire_on_commit=False)
        return self._session

    def finish(self) -> None:
        """Before the kit commits: flush ORM changes, then write the buffered audit and messages."""
        if self._session is not None:
            self._session.flush()
        self.flush_audit()

    def close(self) -> None:
        """Release the ORM session, if one was made."""
        if self._session is not None:
            self._session.close()
            self._session = None

    # organisation and actor

    @property
    def org_id(self) -> uuid.UUID:
        """The organisation's id; ``ConfigurationError`` when the ``tx`` has no organisation."""
        return self.require_org().id

    def require_org(self) -> OrgRead:
        """The organisation, or an error saying this call needs one."""
        if self.org is None:
            raise ConfigurationError(
                "core.E010", "this call needs an organisation: kit.begin(org=...)"
            )
        return self.org

    def bind_org(self, org: OrgRead) -> None:
        """Point this ``tx`` at ``org`` (after creating or updating it)."""
        self.org = org
        self._granted = None

    @property
    def locale(self) -> str:
        """The locale messages and errors of this call are rendered in."""
        return current_locale()

    @property
    def actor_id(self) -> uuid.UUID | None:
        """The acting account's id, or ``None`` for the system actor and anonymous calls."""
        return self.actor if isinstance(self.actor, uuid.UUID) else None

    @property
    def is_system(self) -> bool:
        """True for the system actor, or inside ``tx.elevated()``."""
        return isinstance(self.actor, SystemActor) or self._elevated > 0

    # permissions

    def can(self, permission: str) -> bool:
        """True when the actor holds ``permission`` in this organisation."""
        if permission not in self.kit.permissions:
            raise undeclared(permission)
        if self.is_system:
            return True
        if self.actor is None or self.org is None:
            return False
        if isinstance(self.actor, KeyActor):  # its scopes, in its own organisation only
            return self.actor.org_id == self.org.id and permission in self.actor.scopes
        if self._granted is None:
            self._granted = self.tenancy.permissions_of(self.actor)  # type: ignore[arg-type]
        return ALL_PERMISSIONS in self._granted or permission in self._granted

    def require(self, permission: str) -> None:
        """Raise ``PermissionDenied`` naming ``permission`` unless the actor holds it."""
        if not self.can(permission):
            raise PermissionDenied(permission)

    def require_for(self, permission: str, subject: uuid.UUID | None) -> None:
        """``require(permission)`` to act on the member ``subject``, with separation of duties.

        A person acting on themselves (awarding themselves points, recording or approving their
        own hours, certifying themselves) is refused with ``SelfActionRefused`` unless the
        organisation allows self-action for ``permission`` (``tx.tenancy.allow_self_action``).
        The system actor and ``tx.elevated()`` blocks (a plugin reacting to a decision a
        service already checked) are not a person acting on themselves.
        """
        self.require(permission)
        self.refuse_self(permission, subject)

    def refuse_self(self, permission: str, subject: uuid.UUID | None) -> None:
        """Raise ``SelfActionRefused`` when the actor is ``subject`` and the organisation does
        not allow self-action for ``permission`` (no permission check of its own)."""
        if self.is_system or subject is None or subject != self.actor_id:
            return
        if permission not in self_actions(self.require_org()):
            raise SelfActionRefused(permission)

    def require_system(self, what: str) -> None:
        """Raise ``PermissionDenied`` unless the system actor (or ``elevated``) is acting."""
        if not self.is_system:
            raise PermissionDenied(what)

    def forget_permissions(self) -> None:
        """Drop the cached grants after roles or memberships changed in this transaction."""
        self._granted = None

    @contextmanager
    def elevated(self) -> Iterator[Context]:
        """Run a block with system rights, for a service acting on the person's own behalf.

        E.g. accepting a valid invitation adds a membership although the invitee holds no
        ``roles.manage``. The audit rows still name the real actor.
        """
        self._elevated += 1
        try:
            yield self
        finally:
            self._elevated -= 1

    # services

    def service(self, name: str) -> Any:
        """The service of module ``name`` (``tx.service("points")`` is ``tx.points``)."""
        if name in self._services:
            return self._services[name]
        core = CORE_SERVICES.get(name)
        if core is not None:
            svc: Any = core(self)
        else:
            module = self.kit.modules.get(name)
            if module is None or module.service is None:
                raise AttributeError(f"no enabled module named {name!r} provides a service")
            svc = module.service(self)
        self._services[name] = svc
        return svc

    @property
    def tenancy(self) -> TenancyService:
        """Organisations, roles and memberships."""
        return self.service("tenancy")  # type: ignore[no-any-return]

    @property
    def api_keys(self) -> ApiKeysService:
        """The organisation's API keys (machine clients)."""
        return self.service("api_keys")  # type: ignore[no-any-return]

    @property
    def events(self) -> EventsService:
        """The organisation's audit events as a feed."""
        return self.service("events")  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.service(name)
        except AttributeError:
            raise AttributeError(
                f"'Context' has no attribute {name!r} (enabled modules: {', '.join(self.kit.modules)})"
            ) from None

    # audit, messages, hooks

    def audit(
        self,
        action: str,
        target_type: str,
        target_id: object,
        summary: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record an audit entry (who: the actor; where: this organisation; when: now).

        Entries are appended to the organisation's hash chain when the unit of work commits
        (``flush_audit`` writes them earlier), so the chain head is locked last and briefly.
        """
        self._audit.append(audit.audit_values(self, action, target_type, target_id, summary, data))

    def flush_audit(self) -> None:
        """Write the audit entries and messages recorded so far (for code that reads them back).

        The kit does this just before commit. On PostgreSQL the messages go in with the audit
        entries, in one statement.
        """
        if not self._audit:
            self.flush_messages()
            return
        records, self._audit = self._audit, []
        messages, self._messages = self._messages, []
        audit.write_audit(
            self, records, along=(outbox.OUTBOX_TABLE, messages) if messages else None
        )

    def flush_messages(self) -> None:
        """Write the messages recorded so far, without the audit entries (whose chain head is
        locked last): for code that changes or reads its own messages in the outbox."""
        if self._messages:
            messages, self._messages = self._messages, []
            if self._session is not None:
                self._session.flush()
            insert_rows(self.connection, outbox.OUTBOX_TABLE, messages)

    def send(
        self,
        channel: str,
        recipient: str,
        subject: str = "",
        body: str = "",
        *,
        data: dict[str, Any] | None = None,
        dedup_key: str | None = None,
        deferred: bool = False,
    ) -> uuid.UUID:
        """Record a message for delivery after this transaction commits; returns its id.

        The message is written with the audit entries when the unit of work commits
        (``flush_audit`` writes it earlier); one with a ``dedup_key`` is written at once, so a
        duplicate fails here.

        A ``deferred`` message is left to the outbox worker (``ngo-kit outbox work``): it is
        never delivered inside the request that sent it, whatever
        ``outbox_dispatch_after_commit`` says. For messages whose delivery would show in the
        request's time what its answer hides (a reset link sent only when an account exists).
        """
        row = outbox.message_row(
            org_id=self.org.id if self.org else None,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            data=data,
            locale=self.locale,
            dedup_key=dedup_key,
        )
        if dedup_key is None:
            self._messages.append(row)
        else:
            insert_rows(self.connection, outbox.OUTBOX_TABLE, [row])
        self.sent.append(row["id"])
        if deferred:
            self.deferred.add(row["id"])
        return row["id"]  # type: ignore[no-any-return]

    def emit(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call event hook ``hook_name`` with this ``tx``; an exception rolls everything back."""
        return call_event(self.kit.pm, hook_name, tx=self, **kwargs)

    def decide(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a decision hook (``firstresult``) and return its answer, or ``None``."""
        return call_event(self.kit.pm, hook_name, **kwargs)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after this transaction commits (never after a rollback)."""
        self._after_commit.append(callback)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after this transaction rolls back (never after a commit).

        For what must be recorded because the call failed (a failed sign-in counts towards
        throttling although its error undoes the transaction): the callback runs once the
        rollback released the locks, and writes in a unit of work of its own. Its own errors
        are logged, never raised over the caller's error.
        """
        self._after_rollback.append(callback)

    # database helpers

    @contextmanager
    def read_ahead(self) -> Iterator[bool]:
        """Yields ``True`` inside a read-only snapshot that takes no write lock, on SQLite before
        this unit of work's first statement; ``False`` otherwise (read in the ``tx`` as usual).

        For slow work that needs a read first, such as verifying a password against its stored
        hash: read in the snapshot, do the work, then read again under the lock and reuse the
        work if nothing changed. On SQLite the unit of work takes the database's write lock at
        its first statement (``BEGIN IMMEDIATE``) and holds it to the commit; the snapshot ends
        (rolled back) with the block. Not with unwritten ORM changes, which would go into it.
        """
        pending = self._session is not None and (
            self._session.new or self._session.dirty or self._session.deleted
        )
        if pending or not sqlite_unstarted(self.connection):
            yield False
            return
        dbapi: Any = self.connection.connection.dbapi_connection
        dbapi.execute(SQLITE_BEGIN["DEFERRED"])
        try:
            yield True
        finally:
            dbapi.execute("ROLLBACK")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: a failure inside rolls back only this block.

        What the block recorded with ``tx.audit`` and ``tx.send`` is dropped with it.
        """
        entries, messages, sent = self._audit, self._messages, len(self.sent)
        kept_entries, kept_messages = len(entries), len(messages)
        try:
            with self.session.begin_nested():
                self.session.connection()  # emit SAVEPOINT now: the block may use tx.connection
                yield
        except BaseException:
            # a flush in the block swapped in new lists: what was buffered before it was
            # written and is undone with the block, so it is buffered again
            if self._audit is entries:
                del entries[kept_entries:]
            else:
                self._audit = entries[:kept_entries]
            if self._messages is messages:
                del messages[kept_messages:]
            else:
                self._messages = messages[:kept_messages]
            del self.sent[sent:]
            raise

    @contextmanager
    def translate_integrity(self, error: NgoKitError) -> Iterator[None]:
        """Turn a unique-constraint violation inside the block into ``error`` (keeping the tx usable)."""
        try:
            with self.savepoint():
                yield
        except sa.exc.IntegrityError as exc:
            raise error from exc

    def get_owned(self, model: Any, ident: Any, kind: str | None = None) -> Any:
        """Load a tenant-owned row by id; ``NotFound`` if missing or another organisation's."""
        try:
            key = ident if isinstance(ident, uuid.UUID) else uuid.UUID(str(ident))
        except ValueError:
            raise NotFound(kind or model.__name__, ident) from None
        row = self.session.scalar(
            sa.select(model).where(model.id == key, model.org_id == self.org_id)
        )
        if row is None:
            raise NotFound(kind or model.__name__, ident)
        return row

    def run_after_rollback(self) -> None:
        """Called by the kit after a rollback: the ``on_rollback`` callbacks, errors logged."""
        for callback in self._after_rollback:
            try:
                callback()
            except Exception:
                log.exception("an on_rollback callback failed")

    def run_after_commit(self) -> None:
        """Called by the kit after commit: dispatch messages, then the ``on_commit`` callbacks."""
        for callback in self._after_commit:
            callback()


def translate_database_errors(exc: sa.exc.DBAPIError) -> NgoKitError:
    """The one place driver errors become ngo-kit errors.

    Those that quote the driver's message are marked ``from_database``; a lost race says so in
    its own words (``TransactionConflict``), which clients may read.
    """
    error = _translated(exc)
    error.from_database = not isinstance(error, TransactionConflict)
    return error


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate the driver errors raised in the block (``translate_database_errors``).

    For work outside a unit of work (migrating, verifying): a database that cannot be reached
    is ``DatabaseUnavailable``, one that is not migrated ``ConfigurationError`` ``core.E015``.
    """
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise translate_database_errors(exc) from exc


def _translated(exc: sa.exc.DBAPIError) -> NgoKitError:
    """Decided by the driver's error code (SQLSTATE, MySQL error number, SQLite result code),
    never by its text: PostgreSQL's "does not exist" is as much a missing table as a prepared
    statement a connection pooler lost."""
    detail = str(exc.orig).splitlines()[0][:200] if exc.orig is not None else str(exc)[:200]
    reason = _lost_race(exc)
    if reason is not None:
        return TransactionConflict(reason)
    if isinstance(exc, sa.exc.IntegrityError):
        return Conflict(
            "The change clashes with data that exists already ({detail}).", detail=detail
        )
    kind, code = _error_kind(exc)
    if kind == "pooler":
        return ConfigurationError(
            "core.E018",
            "PostgreSQL refused a prepared statement or a protocol message (SQLSTATE {sqlstate}: "
            "{error}): a connection pooler in transaction mode shares server connections "
            "between clients; leave NGO_KIT_POSTGRES_PREPARE_THRESHOLD unset, or run "
            "PgBouncer 1.22 or later with max_prepared_statements above 0",
            sqlstate=code,
            error=detail,
        )
    if kind == "not_migrated":
        return ConfigurationError(
            "core.E015",
            "the database is not migrated ({error}): run 'ngo-kit db upgrade', "
            "or kit.upgrade() in Python",
            error=detail,
        )
    if kind == "unavailable" or exc.connection_invalidated:
        return DatabaseUnavailable(error=detail)
    return Conflict("The database refused the change, try again ({detail}).", detail=detail)


#: PostgreSQL SQLSTATEs of a statement that names a table, column, schema or type the
#: migrations create.
_PG_NOT_MIGRATED = {"42P01", "42703", "3F000", "42704"}
#: PostgreSQL SQLSTATEs of prepared statements and protocol messages mixed up between clients
#: by a pooler in transaction mode: invalid_sql_statement_name ("_pg3_N" does not exist),
#: duplicate_prepared_statement (already exists), protocol_violation ("bind message supplies 4
#: parameters, but prepared statement requires 5"; PgBouncer's own refusals use it too).
_PG_POOLER = {"26000", "42P05", "08P01"}
#: PostgreSQL SQLSTATEs of a server shutting down or starting up.
_PG_SHUT_DOWN = {"57P01", "57P02", "57P03"}
#: MySQL/MariaDB error numbers of a missing table, column or database.
_MYSQL_NOT_MIGRATED = {1146, 1054, 1049}
#: SQLite's SQLITE_CANTOPEN and SQLITE_NOTADB: the file cannot be opened or is not a database.
_SQLITE_UNAVAILABLE = {14, 26}


def _error_kind(exc: sa.exc.DBAPIError) -> tuple[str | None, str]:
    """``(kind, code)``: kind is ``pooler``, ``not_migrated``, ``unavailable`` or ``None``."""
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and not hasattr(orig, "sqlite_errorcode"):
        errno = args[0]  # MySQL drivers: (errno, message); 2000-2999 are client-side errors
        if errno in _MYSQL_NOT_MIGRATED:
            return "not_migrated", str(errno)
        if 2000 <= errno < 3000:
            return "unavailable", str(errno)
        return None, str(errno)
    if hasattr(orig, "sqlstate"):  # psycopg: the SQLSTATE, None for client-side errors
        sqlstate: str | None = getattr(orig, "sqlstate", None)
        if sqlstate in _PG_POOLER:
            return "pooler", sqlstate
        if sqlstate in _PG_NOT_MIGRATED:
            return "not_migrated", sqlstate
        # class 08: connection exceptions; 57P01-57P03: the server shut down or is starting;
        # no SQLSTATE at all: psycopg lost the connection on the client side
        lost = sqlstate is None or sqlstate.startswith("08") or sqlstate in _PG_SHUT_DOWN
        if lost and isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
            return "unavailable", str(sqlstate)
        return None, str(sqlstate)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        if sqlite_code & 0xFF in _SQLITE_UNAVAILABLE:
            return "unavailable", str(sqlite_code)
        # SQLite has no code of its own for a missing table (it is the generic SQLITE_ERROR);
        # its message starts with this fixed phrase, the one text read here.
        if sqlite_code == 1 and str(orig).startswith("no such table"):
            return "not_migrated", str(sqlite_code)
        return None, str(sqlite_code)
    return None, ""


#: PostgreSQL SQLSTATEs of a unit of work that lost a race (psycopg's ``sqlstate``).
_PG_LOST_RACE = {"40001": "serialization_failure", "40P01": "deadlock", "55P03": "lock_timeout"}
#: MySQL/MariaDB error numbers of the same (the drivers' ``args[0]``). 1020: MariaDB's "record
#: has changed since last read" under ``innodb_snapshot_isolation``.
_MYSQL_LOST_RACE = {1213: "deadlock", 1205: "lock_timeout", 1020: "serialization_failure"}
#: SQLite's primary result codes SQLITE_BUSY and SQLITE_LOCKED (``sqlite_errorcode & 0xFF``).
_SQLITE_BUSY = {5, 6}


def _lost_race(exc: BaseException) -> str | None:
    """Why the database undid the unit of work to let a concurrent one through, or ``None``.

    Looks along the chain of exceptions too: on MySQL/MariaDB a deadlock undoes the whole
    transaction, so leaving a ``tx.savepoint()`` block then fails with "SAVEPOINT does not
    exist", raised while handling the deadlock.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        orig = current.orig if isinstance(current, sa.exc.DBAPIError) else current
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int):  # MySQL drivers: (errno, message)
            if args[0] in _MYSQL_LOST_RACE:
                return _MYSQL_LOST_RACE[args[0]]
        else:
            sqlstate = getattr(orig, "sqlstate", None)
            if isinstance(sqlstate, str) and sqlstate in _PG_LOST_RACE:
                return _PG_LOST_RACE[sqlstate]
        sqlite_code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_BUSY:
            return "busy"
        current = current.__cause__ or current.__context__
    return None


__all__ = ["SYSTEM", "Context", "database_errors", "translate_database_errors"]
