"""Hot-path statements: compiled once per dialect, run on the driver cursor in the ``tx``.

SQLAlchemy's per-statement execution machinery (cache keys, execution context) costs several
times a small statement itself, which decides whether a ledger write stays within 2x raw SQL.
This is the technique core uses for chain appends (``ngo_kit.audit``), made general (first
written for the volunteer module's sign-up path): a Core statement is compiled once per
dialect by SQLAlchemy, parameters go through each bind's own type processor (UUIDs, UTC
datetimes, decimals, JSON) and result values through each column's result processor. Driver
errors surface as SQLAlchemy ``DBAPIError`` so the kit translates them like any other.

Statements with ``expanding`` (``IN``) parameters are not supported: run those through
``tx.connection`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.db import sqlite_start

if TYPE_CHECKING:
    from ngo_kit.context import Context


_MISSING = object()

#: PostgreSQL's type code for NUMERIC, which psycopg's numeric result processor asks for.
NUMERIC_OID = 1700


def bind(name: str, column: Any = None, **kw: Any) -> sa.BindParameter[Any]:
    """A bound parameter ``name`` typed like ``column``, so its values go through the column
    type's processor (UUIDs, UTC datetimes, JSON) when a ``Statement`` runs."""
    return sa.bindparam(name, type_=column.type if column is not None else None, **kw)


class Row(dict[str, Any]):
    """A row from a ``Statement`` as a dict that also reads as attributes (``row.email``) and
    has ``_mapping``, like a SQLAlchemy row or an ORM object."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return self


class Statement:
    """One compiled statement: SQL text, parameter order and type processors."""

    def __init__(self, stmt: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled: Any = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.dialect = dialect
        self.sqlite = dialect.name == "sqlite"
        self.positional = bool(dialect.positional)
        self.order: list[str] = list(compiled.positiontup or []) if self.positional else []
        self.defaults: dict[str, Any] = {}
        self.binds: dict[str, Callable[[Any], Any] | None] = {}
        for name, bind in compiled.binds.items():
            self.binds[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if not bind.required and bind.value is not None:
                self.defaults[name] = bind.value
        self._names = self.order if self.positional else list(self.binds)
        self._plan = [(n, self.binds[n], self.defaults.get(n)) for n in self._names]
        self.columns: list[str] = []
        self.results: list[Callable[[Any], Any] | None] = []
        returning = isinstance(stmt, sa.UpdateBase) and bool(getattr(stmt, "_returning", None))
        if isinstance(stmt, sa.Select | sa.CompoundSelect) or returning:  # or ... RETURNING
            for column in stmt.exported_columns:  # type: ignore[attr-defined]
                self.columns.append(str(column.key))
                impl = column.type.dialect_impl(dialect)
                try:
                    processor = impl.result_processor(dialect, None)
                except TypeError:  # psycopg's NUMERIC wants the column's type code
                    processor = impl.result_processor(dialect, NUMERIC_OID)
                self.results.append(processor)

    def params(self, values: dict[str, Any]) -> Any:
        """The driver's parameters for ``values`` (bind name -> Python value)."""
        get = values.get
        processed = [
            value if processor is None or value is None else processor(value)
            for name, processor, default in self._plan
            for value in (get(name, default),)
        ]
        if self.positional:
            return tuple(processed)
        return dict(zip(self._names, processed, strict=True))

    def run(self, tx: Context, **values: Any) -> Any:
        """Execute in ``tx``'s transaction; returns the open driver cursor."""
        if tx._session is not None:  # ORM rows written earlier in this tx go first
            tx._session.flush()
        return self.execute(tx.connection, values)

    def execute(self, connection: sa.Connection, values: dict[str, Any]) -> Any:
        """Execute on ``connection`` (inside its transaction); returns the open driver cursor."""
        if self.sqlite:
            sqlite_start(connection)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        params = self.params(values)
        try:
            cursor.execute(self.sql, params)
        except self.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise sa.exc.DBAPIError.instance(
                self.sql, params, exc, self.dialect.loaded_dbapi.Error
            ) from exc
        return cursor

    def run_many(
        self, tx: Context, rows: list[dict[str, Any]], same: dict[str, Any] | None = None
    ) -> None:
        """Execute once per row (``executemany``) in ``tx``'s transaction.

        ``same`` holds values every row shares (the organisation id, a batch's timestamp):
        they are processed once for the batch, as are empty ``[]`` and ``{}``.
        """
        if not rows:
            return
        if tx._session is not None:
            tx._session.flush()
        self.execute_many(tx.connection, rows, same)

    def execute_many(
        self,
        connection: sa.Connection,
        rows: list[dict[str, Any]],
        same: dict[str, Any] | None = None,
    ) -> None:
        """``executemany`` on ``connection`` (see ``run_many``)."""
        if self.sqlite:
            sqlite_start(connection)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        params = self.many_params(rows, same or {})
        try:
            cursor.executemany(self.sql, params)
        except self.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                self.sql, params[0], exc, self.dialect.loaded_dbapi.Error
            ) from exc
        finally:
            cursor.close()

    def many_params(self, rows: list[dict[str, Any]], same: dict[str, Any]) -> list[Any]:
        """The driver's parameters for ``executemany`` (see ``run_many``)."""
        names = self.order if self.positional else list(self.binds)
        steps: list[tuple[str, Callable[[Any], Any] | None, Any, Any]] = []
        for name in names:
            processor, default = self.binds[name], self.defaults.get(name)
            if name in same:
                value = same[name]
                fixed = processor(value) if processor is not None and value is not None else value
                steps.append((name, None, default, fixed))
            else:
                steps.append((name, processor, default, _MISSING))
        empty: dict[tuple[str, type], Any] = {}
        out: list[Any] = []
        for row in rows:
            values: list[Any] = []
            for name, processor, default, fixed in steps:
                if fixed is not _MISSING:
                    values.append(fixed)
                    continue
                value = row.get(name, default)
                if processor is not None and value is not None:
                    if not value and isinstance(value, list | dict):
                        key = (name, type(value))
                        found = empty.get(key, _MISSING)
                        if found is _MISSING:
                            found = empty[key] = processor(value)
                        value = found
                    else:
                        value = processor(value)
                values.append(value)
            out.append(tuple(values) if self.positional else dict(zip(names, values, strict=True)))
        return out

    def changed(self, tx: Context, **values: Any) -> int:
        """Run an UPDATE or DELETE; how many rows it changed."""
        if tx._session is not None:  # ORM rows written earlier in this tx go first
            tx._session.flush()
        return self.changed_on(tx.connection, **values)

    def changed_on(self, connection: sa.Connection, **values: Any) -> int:
        """``changed`` on ``connection`` (inside its transaction), for work outside a ``tx``."""
        cursor = self.execute(connection, values)
        count = int(cursor.rowcount)
        cursor.close()
        return count

    def first(self, tx: Context, **values: Any) -> dict[str, Any] | None:
        """Run a SELECT; its first row as a dict of processed values, or ``None``."""
        cursor = self.run(tx, **values)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else self._row(row)

    def all(self, tx: Context, **values: Any) -> list[dict[str, Any]]:
        """Run a SELECT; every row as a dict of processed values."""
        cursor = self.run(tx, **values)
        rows = cursor.fetchall()
        cursor.close()
        return [self._row(r) for r in rows]

    def _row(self, row: Any) -> dict[str, Any]:
        return {
            name: (proc(value) if proc is not None else value)
            for name, proc, value in zip(self.columns, self.results, row, strict=True)
        }


class Statements:
    """Named statements built by ``builders``, compiled on first use for each dialect."""

    def __init__(self, builders: dict[str, Callable[[str], sa.ClauseElement]]) -> None:
        self.builders = builders
        self.compiled: dict[tuple[str, str, str], Statement] = {}
        self._by_dialect: dict[int, tuple[sa.Dialect, dict[str, Statement]]] = {}

    def __call__(self, tx: Context, name: str) -> Statement:
        dialect = tx.connection.dialect
        known = self._by_dialect.get(id(dialect))
        if known is not None and known[0] is dialect and name in known[1]:
            return known[1][name]
        key = (dialect.name, dialect.driver, name)
        found = self.compiled.get(key)
        if found is None:
            found = self.compiled[key] = Statement(self.builders[name](dialect.name), dialect)
        # A fast path keyed by the dialect object (held, so its id cannot be reused).
        if known is None or known[0] is not dialect:
            known = self._by_dialect[id(dialect)] = (dialect, {})
        known[1][name] = found
        return found


_INSERTS: dict[tuple[str, str, str, frozenset[str]], Statement] = {}
_DEFAULTS: dict[str, dict[str, Any]] = {}


def fill_defaults(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Give each row the table's Python-side defaults (ids, timestamps) for columns it lacks."""
    defaults = _DEFAULTS.get(table.name)
    if defaults is None:
        defaults = _DEFAULTS[table.name] = {
            c.name: c.default
            for c in table.columns
            if c.default is not None
            and (getattr(c.default, "is_scalar", False) or getattr(c.default, "is_callable", False))
        }
    for row in rows:
        for name, default in defaults.items():
            if name not in row:
                row[name] = default.arg(None) if default.is_callable else default.arg


def insert_rows(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` into ``table`` on the driver cursor, in ``connection``'s transaction.

    The statement is compiled once per dialect and set of columns; columns left out of a row
    get the table's Python-side defaults (ids, timestamps), written back into the row so the
    caller sees what was stored. For hot paths: ledger entries, stock moves, audit rows.
    """
    if not rows:
        return
    fill_defaults(table, rows)
    dialect = connection.dialect
    names = frozenset(rows[0])
    key = (dialect.name, dialect.driver, table.name, names)
    statement = _INSERTS.get(key)
    if statement is None:
        columns = [c for c in table.columns if c.name in names]
        stmt = table.insert().values({c.name: sa.bindparam(c.name, type_=c.type) for c in columns})
        statement = _INSERTS[key] = Statement(stmt, dialect)
    if len(rows) == 1:
        statement.execute(connection, rows[0]).close()
    else:
        statement.execute_many(connection, rows)
