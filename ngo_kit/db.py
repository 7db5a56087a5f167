"""The declarative base, naming convention and the column types every module shares."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
import uuid_utils.compat as uuid_compat
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Stock quantities and unit values: exact decimals, never floats.
QUANTITY_PRECISION = 18
QUANTITY_SCALE = 4
#: The smallest quantity (0.0001) and the first one too large (10**14).
QUANTITY_UNIT = Decimal(1).scaleb(-QUANTITY_SCALE)
QUANTITY_LIMIT = Decimal(10) ** (QUANTITY_PRECISION - QUANTITY_SCALE)


def new_id() -> uuid.UUID:
    """A new public identifier: a time-ordered UUID (v7), unguessable and index-friendly."""
    return uuid_compat.uuid7()


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    Naive datetimes are refused: a time without a zone is a bug waiting for a daylight-saving
    change.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; ngo-kit stores timezone-aware UTC times")
        value = value.astimezone(dt.UTC)
        if dialect.name in ("sqlite", "mysql"):
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def exact_quantity(value: Decimal | int) -> Decimal:
    """``value`` as a ``Decimal`` a quantity column stores exactly, or an error.

    A quantity has at most ``QUANTITY_SCALE`` (4) decimal places and ``QUANTITY_PRECISION`` (18)
    digits in all, so at most 14 before the point. Values beyond that are refused on every
    database rather than rounded by one and not another: a rounded quantity would no longer
    match the hash of the move that carried it. Raises ``TypeError`` for a float and
    ``ValueError`` for a value out of range; services check their input before it gets here.
    """
    if isinstance(value, float):
        raise TypeError("floats are not accepted for quantities; use Decimal")
    exact = Decimal(value)
    if not exact.is_finite():
        raise ValueError(f"a quantity must be a finite number, not {exact}")
    if exact != exact.quantize(QUANTITY_UNIT) or abs(exact) >= QUANTITY_LIMIT:
        raise ValueError(
            f"a quantity has at most {QUANTITY_PRECISION - QUANTITY_SCALE} digits before the "
            f"decimal point and {QUANTITY_SCALE} after it: {exact}"
        )
    return exact


class _ScaledInteger(sa.Numeric):  # type: ignore[type-arg]
    """How SQLite stores a ``Quantity``: the quantity times 10**4 as an exact integer.

    SQLite keeps NUMERIC values as binary floating point, which cannot hold 0.1 or
    1234567890123.4567; an integer up to 2**63 it keeps exactly. The column is still declared
    ``NUMERIC(18, 4)`` (its affinity keeps integers as they are), so the schema is the same on
    every database; the scaled integers sort, compare, add and sum in SQL like the quantities.
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None  # ``Quantity.process_bind_param`` scaled it already

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None  # ``Quantity.process_result_value`` scales it back


class Quantity(sa.TypeDecorator[Decimal]):
    """An exact decimal quantity (stock, unit values): NUMERIC(18, 4) on every database, held
    as an integer count of ten-thousandths on SQLite (see ``_ScaledInteger``)."""

    impl = sa.Numeric(QUANTITY_PRECISION, QUANTITY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            numeric: Any = self.impl
            return _ScaledInteger(numeric.precision, numeric.scale)
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = exact_quantity(value)
        if dialect.name == "sqlite":
            return int(exact.scaleb(QUANTITY_SCALE))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            if isinstance(value, float):  # an average, or a value written before 0.x.y
                value = Decimal(repr(value)).quantize(Decimal(1))
            return Decimal(value).scaleb(-QUANTITY_SCALE)
        return Decimal(value).quantize(QUANTITY_UNIT)


def quantity_as_float(column: Any, dialect_name: str) -> sa.ColumnElement[Any]:
    """The ``Quantity`` ``column`` read as a float, for arithmetic where speed beats exactness
    (distances between coordinates): SQLite's scaled integer is divided back in SQL."""
    as_float = sa.type_coerce(column, sa.Float)
    if dialect_name == "sqlite":
        return as_float / float(10**QUANTITY_SCALE)
    return as_float


class Base(DeclarativeBase):
    """The base of every ngo-kit table. Table names are ``<module>_<noun>``."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        uuid.UUID: sa.Uuid(),
        Decimal: Quantity(),
        dict[str, Any]: sa.JSON(),
        list[Any]: sa.JSON(),
    }


class IdMixin:
    """A time-ordered UUID primary key."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class OrgMixin:
    """The tenant column every tenant-owned table has."""

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("core_organisation.id", ondelete="RESTRICT"), index=True
    )


class TimestampMixin:
    """When the row was created (UTC)."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


#: Column names that hold a person's id (an account id) unless the column's ``info`` says
#: ``{"person_id": False}``; a column of another name that holds one says ``{"person_id": True}``.
#: Every table with such a column must be covered by a person's export and erasure
#: (registration's ``ngo_kit_register_personal_data``); a test checks every module and plugin.
PERSON_ID_NAMES = frozenset({"member_id", "user_id", "person_id", "account_id", "actor_id"})


def holds_person_id(column: sa.Column[Any]) -> bool:
    """True when ``column`` holds a person's id, by the rule of :data:`PERSON_ID_NAMES`."""
    marked = column.info.get("person_id")
    if marked is not None:
        return bool(marked)
    return column.name in PERSON_ID_NAMES


def insert_ignore(bind: Any, table: Any, **values: Any) -> sa.Insert:
    """An INSERT that does nothing when the row's key exists already, on every dialect.

    ``bind`` is a Session, Connection or Engine (only its dialect is read), or a dialect's
    name for statements built once per dialect (``ngo_kit.statements``). Without ``values``
    the caller adds them (``.values(...)`` or ``.from_select(...)``).
    """
    dialect = (
        bind
        if isinstance(bind, str)
        else (bind.get_bind() if hasattr(bind, "get_bind") else bind).dialect.name
    )
    target = getattr(table, "__table__", table)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert: sa.Insert = pg_insert(target).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = sqlite_insert(target).on_conflict_do_nothing()
    else:
        insert = sa.insert(target).prefix_with("IGNORE")
    return insert.values(**values) if values else insert


SQLITE_BEGIN = {
    "IMMEDIATE": "BEGIN IMMEDIATE",
    "DEFERRED": "BEGIN DEFERRED",
    "EXCLUSIVE": "BEGIN EXCLUSIVE",
}


def sqlite_unstarted(connection: sa.Connection) -> bool:
    """Whether ``connection`` is a SQLite unit of work that has not yet run a statement: its
    driver transaction (and so the write lock, see ``sqlite_start``) not yet open."""
    if connection.dialect.name != "sqlite":
        return False
    dbapi_connection: Any = connection.connection.dbapi_connection
    return not dbapi_connection.in_transaction and connection.in_transaction()


def sqlite_start(connection: sa.Connection) -> None:
    """Open the SQLite transaction of ``connection``'s unit of work if no statement has yet.

    ``BEGIN IMMEDIATE`` (or the ``sqlite_begin`` execution option's mode) goes out just before
    the first statement, not when the unit of work opens: what a unit of work computes before
    it touches the database (a password hash) does not hold the write lock. Every statement
    runs through here: SQLAlchemy's through the ``before_cursor_execute`` event, the hot path's
    (``ngo_kit.statements``) directly.
    """
    if not sqlite_unstarted(connection):
        return
    mode = SQLITE_BEGIN[connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")]
    dbapi_connection: Any = connection.connection.dbapi_connection
    try:
        dbapi_connection.execute(mode)  # straight to the driver: hot path
    except connection.dialect.loaded_dbapi.Error as exc:  # still busy after the busy timeout
        raise sa.exc.DBAPIError.instance(
            mode, (), exc, connection.dialect.loaded_dbapi.Error
        ) from exc
