"""Statements of the sign-up hot path, compiled once per dialect and run on the driver cursor.

SQLAlchemy's per-statement execution machinery (cache keys, ORM context) cost ten times the
statements themselves on a sign-up; this is the same technique core uses for chain appends
(``ngo_kit.audit``), made general: a Core statement is compiled once per dialect by SQLAlchemy,
parameters go through each bind's own type processor (UUIDs, UTC datetimes, JSON) and result
values through each column's result processor. Driver errors surface as SQLAlchemy
``DBAPIError`` so the kit translates them like any other. Candidate for a core helper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from ngo_kit.context import Context


_MISSING = object()


class Statement:
    """One compiled statement: SQL text, parameter order and type processors."""

    def __init__(self, stmt: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled: Any = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.dialect = dialect
        self.positional = bool(dialect.positional)
        self.order: list[str] = list(compiled.positiontup or []) if self.positional else []
        self.defaults: dict[str, Any] = {}
        self.binds: dict[str, Callable[[Any], Any] | None] = {}
        for name, bind in compiled.binds.items():
            self.binds[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if not bind.required and bind.value is not None:
                self.defaults[name] = bind.value
        self._plan: list[tuple[str, Callable[[Any], Any] | None, Any]] | None = None
        self.columns: list[str] = []
        self.types: list[Any] = []
        self.results: list[Callable[[Any], Any] | None] | None = None
        returned = stmt.exported_columns if isinstance(stmt, sa.Select | sa.UpdateBase) else ()
        if isinstance(stmt, sa.Select) or bool(getattr(stmt, "_returning", None)):
            for column in returned:
                self.columns.append(str(column.key))
                self.types.append(column.type.dialect_impl(dialect))

    def params(self, values: dict[str, Any], memo: dict[Any, Any] | None = None) -> Any:
        """The driver's parameters for ``values`` (bind name -> Python value).

        ``memo`` (for ``executemany``) keeps processed values of repeated scalars, such as one
        organisation id and one timestamp for a whole batch, and of empty ``[]`` / ``{}``.
        """
        plan = self._plan
        if plan is None:
            names = self.order if self.positional else list(self.binds)
            plan = self._plan = [(n, self.binds[n], self.defaults.get(n)) for n in names]
        out = []
        for name, processor, default in plan:
            value = values.get(name, default)
            if processor is not None and value is not None:
                if memo is None:
                    value = processor(value)
                elif isinstance(value, list | dict):
                    if value:
                        value = processor(value)
                    else:
                        key = (name, type(value))
                        found = memo.get(key)
                        if found is None:
                            found = memo[key] = processor(value)
                        value = found
                else:
                    key = (name, value)
                    found = memo.get(key, _MISSING)
                    if found is _MISSING:
                        found = memo[key] = processor(value)
                    value = found
            out.append(value)
        if self.positional:
            return tuple(out)
        return dict(zip((p[0] for p in plan), out, strict=True))

    def run(self, tx: Context, **values: Any) -> Any:
        """Execute in ``tx``'s transaction; returns the open driver cursor."""
        connection = tx.connection
        if tx._session is not None:  # ORM rows written earlier in this tx go first
            tx._session.flush()
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

    def run_many(self, tx: Context, rows: list[dict[str, Any]]) -> None:
        """Execute once per row (``executemany``) in ``tx``'s transaction."""
        if not rows:
            return
        connection = tx.connection
        if tx._session is not None:
            tx._session.flush()
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        memo: dict[Any, Any] = {}
        params = [self.params(row, memo) for row in rows]
        try:
            cursor.executemany(self.sql, params)
        except self.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                self.sql, params[0], exc, self.dialect.loaded_dbapi.Error
            ) from exc
        finally:
            cursor.close()

    def changed(self, tx: Context, **values: Any) -> int:
        """Run an UPDATE or DELETE; how many rows it changed."""
        cursor = self.run(tx, **values)
        count = int(cursor.rowcount)
        cursor.close()
        return count

    def first(self, tx: Context, **values: Any) -> dict[str, Any] | None:
        """Run a SELECT; its first row as a dict of processed values, or ``None``."""
        cursor = self.run(tx, **values)
        row = cursor.fetchone()
        self._processors(cursor)
        cursor.close()
        return None if row is None else self._row(row)

    def all(self, tx: Context, **values: Any) -> list[dict[str, Any]]:
        """Run a SELECT; every row as a dict of processed values."""
        cursor = self.run(tx, **values)
        rows = cursor.fetchall()
        self._processors(cursor)
        cursor.close()
        return [self._row(r) for r in rows]

    def _processors(self, cursor: Any) -> None:
        # Result processors may need the driver's type code, known after the first execution.
        if self.results is None:
            codes = [d[1] for d in cursor.description or ()]
            self.results = [
                impl.result_processor(self.dialect, code)
                for impl, code in zip(self.types, codes, strict=True)
            ]

    def _row(self, row: Any) -> dict[str, Any]:
        assert self.results is not None
        return {
            name: (proc(value) if proc is not None else value)
            for name, proc, value in zip(self.columns, self.results, row, strict=True)
        }


class Statements:
    """Named statements built by ``builders``, compiled on first use for each dialect."""

    def __init__(self, builders: dict[str, Callable[[str], sa.ClauseElement]]) -> None:
        self.builders = builders
        self.compiled: dict[tuple[str, str, str], Statement] = {}

    def __call__(self, tx: Context, name: str) -> Statement:
        dialect = tx.connection.dialect
        key = (dialect.name, dialect.driver, name)
        found = self.compiled.get(key)
        if found is None:
            found = self.compiled[key] = Statement(self.builders[name](dialect.name), dialect)
        return found
