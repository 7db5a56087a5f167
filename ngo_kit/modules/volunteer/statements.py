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

    def _get_plan(self) -> list[tuple[str, Callable[[Any], Any] | None, Any]]:
        plan = self._plan
        if plan is None:
            names = self.order if self.positional else list(self.binds)
            plan = self._plan = [(n, self.binds[n], self.defaults.get(n)) for n in names]
        return plan

    def params(self, values: dict[str, Any]) -> Any:
        """The driver's parameters for ``values`` (bind name -> Python value)."""
        plan = self._get_plan()
        out = []
        for name, processor, default in plan:
            value = values.get(name, default)
            if processor is not None and value is not None:
                value = processor(value)
            out.append(value)
        if self.positional:
            return tuple(out)
        return dict(zip((p[0] for p in plan), out, strict=True))

    def many_params(self, rows: list[dict[str, Any]], same: dict[str, Any]) -> list[Any]:
        """Parameters for ``executemany``: ``same`` holds the values every row shares (the
        organisation id, the batch's timestamp), processed once; empty ``[]`` and ``{}`` are
        processed once per column."""
        plan = self._get_plan()
        steps: list[tuple[str, Callable[[Any], Any] | None, Any, Any]] = []
        for name, processor, default in plan:
            if name in same:
                value = same[name]
                fixed = processor(value) if processor is not None and value is not None else value
                steps.append((name, None, default, fixed))
            else:
                steps.append((name, processor, default, _MISSING))
        empty: dict[tuple[str, type], Any] = {}
        out: list[Any] = []
        for row in rows:
            values = []
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
            if self.positional:
                out.append(tuple(values))
            else:
                out.append(dict(zip((p[0] for p in plan), values, strict=True)))
        return out

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

    def run_many(
        self, tx: Context, rows: list[dict[str, Any]], same: dict[str, Any] | None = None
    ) -> None:
        """Execute once per row (``executemany``) in ``tx``'s transaction; ``same`` holds
        values shared by every row."""
        if not rows:
            return
        connection = tx.connection
        if tx._session is not None:
            tx._session.flush()
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
