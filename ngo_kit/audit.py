"""The append-only, hash-chained audit log, and the chain helper the ledgers share.

A *chain* is a per-organisation sequence of rows where each row stores ``seq``, the hash of
the row before it (``prev_hash``) and its own ``hash`` = SHA-256 over ``prev_hash`` and a
canonical serialisation of its content. The newest ``seq`` and ``hash`` of every chain are kept
in ``core_chain_head``, updated in the same transaction under a row lock, so appenders queue
per organisation and the tail cannot be cut off unnoticed. ``verify`` recomputes a chain and
names the first row that was altered, deleted or inserted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from ngo_kit.chain_keys import (
    UNKEYED,
    ChainKeys,
    RowHashing,
    canonical_around_seq,
    canonical_value,
    key_id_column,
)
from ngo_kit.chain_keys import chain_hash as chain_hash  # re-exported: rows keyed "sha256"
from ngo_kit.db import Base, IdMixin, OrgMixin, new_id, utcnow
from ngo_kit.schemas import ReadModel
from ngo_kit.statements import Statement, Statements, fill_defaults, insert_rows

if TYPE_CHECKING:
    from ngo_kit.context import Context

GENESIS = "0" * 64


class ChainHead(Base):
    """The newest ``seq`` and ``hash`` of one chain of one organisation."""

    __tablename__ = "core_chain_head"

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("core_organisation.id", ondelete="RESTRICT"), primary_key=True
    )
    chain: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    hash: Mapped[str] = mapped_column(sa.String(64), default=GENESIS)


class AuditEntry(IdMixin, OrgMixin, Base):
    """One audit record: who did what, when, to which target, in which organisation."""

    __tablename__ = "core_audit"
    __table_args__ = (sa.UniqueConstraint("org_id", "seq"),)

    seq: Mapped[int] = mapped_column(sa.BigInteger)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(sa.String(40))
    action: Mapped[str] = mapped_column(sa.String(100))
    target_type: Mapped[str] = mapped_column(sa.String(63))
    target_id: Mapped[str] = mapped_column(sa.String(100))
    summary: Mapped[str] = mapped_column(sa.String(500))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = key_id_column()


AUDIT_TABLE: sa.Table = AuditEntry.__table__  # type: ignore[assignment]
AUDIT_FIELDS = (
    "id",
    "org_id",
    "seq",
    "at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "summary",
    "data",
)


class AuditRead(ReadModel):
    """An audit record as services return it."""

    id: uuid.UUID
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    summary: str
    data: dict[str, Any]


# --- canonical hashing (ngo_kit.chain_keys) ------------------------------------------------

_canonical_value = canonical_value


def append_chained(
    tx: Context, chain: str, table: sa.Table, values: dict[str, Any], fields: Sequence[str]
) -> dict[str, Any]:
    """Append one row to ``chain`` in ``table``: take the head lock, hash, insert, move the head.

    ``values`` holds the row's content (``org_id`` is set from ``tx``); ``fields`` names the
    columns that are hashed. Returns the inserted values, with ``seq``, ``prev_hash`` and
    ``hash`` filled in.
    """
    return append_chained_many(tx, chain, table, [values], fields)[0]


def append_chained_many(
    tx: Context,
    chain: str,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    fields: Sequence[str],
    *,
    org_id: uuid.UUID | None = None,
    along: Along | None = None,
) -> list[dict[str, Any]]:
    """Append several rows to one chain with a single head lock, insert and head update.

    The chain is the ``tx``'s organisation's, or ``org_id``'s when given. ``along`` is a table
    and rows to insert in the same unit of work; on PostgreSQL, up to ``ONE_STATEMENT_ROWS``
    of them go in the same statement as up to ``ONE_STATEMENT_ROWS`` chain rows. Rows are
    hashed with the kit's newest chain key (``ngo_kit.chain_keys``), whose id each row keeps.
    """
    connection = tx.connection
    if tx._session is not None:
        tx._session.flush()  # ORM rows written earlier in this tx go first
    org_id = (org_id or tx.org_id) if rows else None
    keys: ChainKeys = tx.kit.chain_keys
    key_id = keys.signing_id
    parts = (
        _cut_around_seq(table, org_id, rows, fields, keys)
        if org_id and connection.dialect.name == "postgresql" and len(rows) <= ONE_STATEMENT_ROWS
        else None
    )
    if along is not None and not (parts is not None and 0 < len(along[1]) <= ONE_STATEMENT_ROWS):
        insert_rows(connection, *along)  # on their own: elsewhere, or too many for one statement
        along = None
    if org_id is None:
        return []
    if parts is not None:
        return _append_on_server(connection, table, *parts, org_id=org_id, chain=chain, along=along)
    found = _HEAD(tx, "select").first(tx, o=org_id, c=chain)
    seq, prev = (
        (int(found["seq"]), str(found["hash"])) if found else lock_head(connection, org_id, chain)
    )
    out: list[dict[str, Any]] = []
    for values in rows:
        seq += 1
        row = {**values, "org_id": org_id, "seq": seq, "key_id": key_id}
        row["prev_hash"] = prev
        hashing = keys.row_hashing(key_id, {f: row.get(f) for f in fields})
        row["hash"] = prev = hashing.hash(prev, seq if "seq" in fields else None)
        out.append(row)
    insert_rows(connection, table, out)
    _HEAD(tx, "update").changed(tx, o=org_id, c=chain, s=seq, h=prev)
    return out


# --- PostgreSQL: the whole append in one statement ----------------------------------------

#: On PostgreSQL up to this many rows are appended in one statement (see ``_append_on_server``).
ONE_STATEMENT_ROWS = 8

_SERVER_COLUMNS = frozenset({"seq", "prev_hash", "hash"})

#: Rows of another table to insert with a chain's (``append_chained_many``'s ``along``).
Along = tuple[sa.Table, list[dict[str, Any]]]

_ON_SERVER: dict[
    tuple[str, str, tuple[str, ...], int, tuple[sa.Table, tuple[str, ...], int] | None],
    Statement,
] = {}


def _cut_around_seq(
    table: sa.Table,
    org_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
    fields: Sequence[str],
    keys: ChainKeys,
) -> tuple[list[dict[str, Any]], Sequence[str], list[RowHashing]] | None:
    """The rows to append (defaults and key id filled in) with how to hash each one (its
    canonical bytes before and after ``seq``, its row key), for ``_append_on_server``; ``None``
    when ``fields`` lacks ``seq`` or a row cannot be cut around it."""
    if "seq" not in fields:
        return None
    out = [{**values, "org_id": org_id, "key_id": keys.signing_id} for values in rows]
    fill_defaults(table, out)
    parts: list[RowHashing] = []
    for row in out:
        cut = canonical_around_seq({**{f: row.get(f) for f in fields}, "seq": 0})
        if cut is None:
            return None
        parts.append(keys.hashing(keys.signing_id, *cut))
    return out, fields, parts


def _append_on_server(
    connection: sa.Connection,
    table: sa.Table,
    out: list[dict[str, Any]],
    fields: Sequence[str],
    parts: list[RowHashing],
    *,
    org_id: uuid.UUID,
    chain: str,
    along: Along | None = None,
) -> list[dict[str, Any]]:
    """Lock the head, hash, insert ``out`` (and ``along``'s rows) and move the head, in one
    round trip.

    ``parts`` holds how to hash each row (``_cut_around_seq``): its canonical bytes before and
    after ``seq`` and its row key. The statement locks the head row (``FOR UPDATE``, as
    ``lock_head`` does), numbers the rows from it and computes each hash as the HMAC-SHA256,
    under the row key, of the previous hash, the bytes before ``seq``, ``seq`` in decimal and
    the bytes after (RFC 2104's construction over the database's SHA-256, from the row key's
    padded forms; the chain key is never sent). Every hash the database returns is then
    checked with Python's ``hmac`` (``RowHashing.hash``) before the unit of work goes on, so a
    row ``verify`` would reject is never committed. A chain's first append
    creates its head row (``lock_head``). Returns the rows as written.
    """
    names = tuple(sorted(n for n in out[0] if n not in _SERVER_COLUMNS))
    values: dict[str, Any] = {
        f"{name}_{n}": row[name] for n, row in enumerate(out) for name in names
    }
    also: tuple[sa.Table, tuple[str, ...], int] | None = None
    if along is not None:
        fill_defaults(*along)
        also = (along[0], tuple(sorted(along[1][0])), len(along[1]))
        values.update(
            (f"along_{name}_{n}", row[name]) for n, row in enumerate(along[1]) for name in also[1]
        )
    dialect = connection.dialect
    key = (dialect.driver, table.name, names, len(out), also)
    statement = _ON_SERVER.get(key)
    if statement is None:
        statement = _ON_SERVER[key] = Statement(
            _append_statement(table, names, len(out), also), dialect
        )
    for n, hashing in enumerate(parts):
        values[f"before_{n}"] = hashing.before
        values[f"after_{n}"] = hashing.after
        values[f"ipad_{n}"], values[f"opad_{n}"] = hashing.pads()
    values.update(o=org_id, c=chain)
    cursor = statement.execute(connection, values)
    written = cursor.fetchall()
    cursor.close()
    if not written:  # no head row yet (``along``'s rows went in): create it, lock it, append
        lock_head(connection, org_id, chain)
        return _append_on_server(connection, table, out, fields, parts, org_id=org_id, chain=chain)
    for row, hashing, (_n, seq, prev_hash, hash_) in zip(out, parts, written, strict=True):
        row.update(seq=int(seq), prev_hash=prev_hash, hash=hash_)
        expected = hashing.hash(prev_hash, int(seq))
        if hash_ != expected:
            raise RuntimeError(
                f"the database computed chain hash {hash_} for {table.name} seq {seq}, "
                f"ngo-kit computes {expected}: nothing was committed"
            )
    return out


def _number(value: int) -> sa.ColumnElement[int]:
    return sa.literal_column(str(value), sa.Integer)


def _append_statement(
    table: sa.Table,
    names: tuple[str, ...],
    count: int,
    also: tuple[sa.Table, tuple[str, ...], int] | None = None,
) -> sa.Select[Any]:
    """``_append_on_server``'s statement for ``count`` rows with columns ``names``.

    ``also`` adds an INSERT of that many rows with those columns into another table.
    """
    head_table: sa.Table = ChainHead.__table__  # type: ignore[assignment]
    org = sa.bindparam("o", type_=sa.Uuid())
    name = sa.bindparam("c", type_=sa.String())
    head = (
        sa.select(head_table.c.seq, head_table.c.hash)
        .where(head_table.c.org_id == org, head_table.c.chain == name)
        .with_for_update()
        .cte("chain_head_locked")
    )
    chained = sa.select(
        _number(0).label("n"),
        head.c.seq.label("seq"),
        sa.cast(head.c.hash, sa.Text).label("prev_hash"),
        sa.cast(head.c.hash, sa.Text).label("hash"),
    ).cte("chain_rows", recursive=True)
    last = chained.alias("last")
    step = last.c.n + _number(1)
    binary = sa.LargeBinary()

    def piece(side: str) -> sa.ColumnElement[bytes]:
        return sa.case(
            *[
                (step == _number(k + 1), sa.bindparam(f"{side}_{k}", type_=binary))
                for k in range(count)
            ]
        )

    def utf8(value: sa.ColumnElement[Any]) -> sa.ColumnElement[bytes]:
        return sa.func.convert_to(
            sa.cast(value, sa.Text), sa.literal_column("'UTF8'"), type_=binary
        )

    def concat(*parts: sa.ColumnElement[bytes]) -> sa.ColumnElement[bytes]:
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.op("||", return_type=binary)(part)
        return joined

    message = concat(
        utf8(last.c.hash), piece("before"), utf8(last.c.seq + _number(1)), piece("after")
    )
    inner = sa.func.sha256(concat(piece("ipad"), message), type_=binary)
    digest = sa.func.encode(
        sa.func.sha256(concat(piece("opad"), inner), type_=binary),
        sa.literal_column("'hex'"),
        type_=sa.Text,
    )
    chained = chained.union_all(
        sa.select(step, last.c.seq + _number(1), last.c.hash, digest).where(
            last.c.n < _number(count)
        )
    )
    columns = [c for c in table.columns if c.name in names]
    selects = [
        sa.select(
            *[sa.cast(sa.bindparam(f"{c.name}_{k}", type_=c.type), c.type) for c in columns],
            chained.c.seq,
            chained.c.prev_hash,
            chained.c.hash,
        ).where(chained.c.n == _number(k + 1))
        for k in range(count)
    ]
    rows = table.insert().from_select(
        [*(c.name for c in columns), "seq", "prev_hash", "hash"],
        selects[0] if count == 1 else sa.union_all(*selects),
    )
    newest = (
        sa.select(chained.c.seq, chained.c.hash).where(chained.c.n == _number(count)).subquery()
    )
    move = (
        head_table.update()
        .where(head_table.c.org_id == org, head_table.c.chain == name)
        .values(
            seq=sa.select(newest.c.seq).scalar_subquery(),
            hash=sa.select(newest.c.hash).scalar_subquery(),
        )
    )
    statement = (
        sa.select(chained.c.n, chained.c.seq, chained.c.prev_hash, chained.c.hash)
        .where(chained.c.n > _number(0))
        .order_by(chained.c.n)
        .add_cte(rows.cte("chain_rows_written"))
        .add_cte(move.cte("chain_head_moved"))
    )
    if also is None:
        return statement
    other, other_names, other_count = also
    other_columns = [c for c in other.columns if c.name in other_names]
    inserted = other.insert().values(
        [
            {c.name: sa.bindparam(f"along_{c.name}_{k}", type_=c.type) for c in other_columns}
            for k in range(other_count)
        ]
    )
    return statement.add_cte(inserted.cte("rows_along"))


def _head_select(dialect: str) -> sa.Select[Any]:
    head: sa.Table = ChainHead.__table__  # type: ignore[assignment]
    select = sa.select(head.c.seq, head.c.hash).where(
        head.c.org_id == sa.bindparam("o", type_=sa.Uuid()), head.c.chain == sa.bindparam("c")
    )
    # SQLite writers are already serialised by BEGIN IMMEDIATE
    return select if dialect == "sqlite" else select.with_for_update()


def _head_update(dialect: str) -> sa.Update:
    head: sa.Table = ChainHead.__table__  # type: ignore[assignment]
    return (
        head.update()
        .where(
            head.c.org_id == sa.bindparam("o", type_=sa.Uuid()), head.c.chain == sa.bindparam("c")
        )
        .values(
            seq=sa.bindparam("s", type_=sa.BigInteger()), hash=sa.bindparam("h", type_=sa.String())
        )
    )


# Appending to a chain is the hottest write path (every audit row, points entry and stock move):
# its statements run on the driver cursor, compiled once per dialect (ngo_kit.statements).
_HEAD = Statements({"select": _head_select, "update": _head_update})


def lock_head(connection: sa.Connection, org_id: uuid.UUID, chain: str) -> tuple[int, str]:
    """Lock and read a chain's head row, creating it on first use. Returns ``(seq, hash)``."""
    head: sa.Table = ChainHead.__table__  # type: ignore[assignment]
    stmt = (
        sa.select(head.c.seq, head.c.hash)
        .where(head.c.org_id == org_id, head.c.chain == chain)
        .with_for_update()
    )
    row = connection.execute(stmt).first()
    if row is None:
        from ngo_kit.db import insert_ignore

        connection.execute(
            insert_ignore(connection, ChainHead, org_id=org_id, chain=chain, seq=0, hash=GENESIS)
        )
        row = connection.execute(stmt).one()
    return int(row[0]), str(row[1])


# --- writing audit entries ----------------------------------------------------------------


def audit_values(
    tx: Context,
    action: str,
    target_type: str,
    target_id: object,
    summary: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit record's content for the ``tx``'s organisation and actor, stamped now."""
    return {
        "id": new_id(),
        "org_id": tx.org_id,
        "at": utcnow(),
        "actor": actor_label(tx.actor),
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "summary": summary[:500],
        "data": _canonical_value(data or {}),
    }


#: The name of the audit log's chain (``core_chain_head.chain``).
AUDIT_CHAIN = "audit"


def write_audit(
    tx: Context, records: Sequence[dict[str, Any]], *, along: Along | None = None
) -> None:
    """Append audit records to their organisations' chains, in the order they were made.

    The kit calls this once per unit of work, just before commit (``tx.audit`` buffers), so the
    per-organisation audit head is locked last and briefly: whatever rows a service or an event
    hook locked before, the audit head never sits in the middle of that order. ``along`` (the
    unit of work's messages) goes in with the first organisation's records.
    """
    start = 0
    while start < len(records):
        org_id = records[start]["org_id"]
        end = start
        while end < len(records) and records[end]["org_id"] == org_id:
            end += 1
        append_chained_many(
            tx,
            AUDIT_CHAIN,
            AUDIT_TABLE,
            records[start:end],
            AUDIT_FIELDS,
            org_id=org_id,
            along=along,
        )
        along = None
        start = end


def actor_label(actor: object) -> str:
    """How an actor is written in audit rows: the account id, ``key:<id>`` for an API key,
    ``system`` or ``anonymous``."""
    if actor is None:
        return "anonymous"
    if isinstance(actor, uuid.UUID):
        return str(actor)
    label = getattr(actor, "audit_label", None)  # a KeyActor (tenancy imports this module)
    return label if isinstance(label, str) else "system"


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One integrity problem found by a check, in words a person can act on."""

    check: str
    org_id: uuid.UUID | None
    message: str
    row: str | None = None

    def __str__(self) -> str:
        where = f" [org {self.org_id}]" if self.org_id else ""
        return f"{self.check}{where}: {self.message}"


#: A chain's head as a checkpoint recorded it, per organisation: ``(seq, hash)``.
AnchoredHeads = Mapping[uuid.UUID, tuple[int, str]]


@dataclass(frozen=True)
class ChainCheck:
    """Verification of one hash chain: which table, which chain name, which fields are hashed.

    The table has ``seq``, ``prev_hash``, ``hash`` and ``key_id`` columns besides the fields.
    """

    name: str
    chain: str
    table: sa.Table
    fields: tuple[str, ...]

    def run(
        self,
        session: Session,
        *,
        keys: ChainKeys | None = None,
        anchored: AnchoredHeads | None = None,
        anchored_at: str = "",
    ) -> list[Problem]:
        """Recompute the chain of every organisation; report the first break in each.

        ``keys`` are the chain keys rows may be hashed with (without them only rows written
        before chains were keyed verify). ``anchored`` holds the heads a checkpoint taken at
        ``anchored_at`` recorded: a chain must still pass through each with the same hash, and
        must not end before it.
        """
        problems: list[Problem] = []
        heads = {
            org: (seq, h)
            for org, seq, h in session.execute(
                sa.select(ChainHead.org_id, ChainHead.seq, ChainHead.hash).where(
                    ChainHead.chain == self.chain
                )
            )
        }
        orgs = set(heads) | set(session.scalars(sa.select(self.table.c.org_id).distinct()))
        orgs |= set(anchored or {})
        walk = _Walk(self, keys, anchored or {}, anchored_at)
        for org in sorted(orgs, key=str):
            problem = walk.check_org(session, org, heads.get(org, (0, GENESIS)))
            if problem is not None:
                problems.append(problem)
        return problems

    def rows(self, session: Session, org: uuid.UUID) -> Iterator[sa.Row[Any]]:
        """The organisation's chain rows in ``seq`` order, with the hashed fields."""
        cols = [self.table.c[f] for f in self.fields if f != "seq"]
        stmt = (
            sa.select(
                self.table.c.seq,
                self.table.c.prev_hash,
                self.table.c.hash,
                self.table.c.key_id,
                *cols,
            )
            .where(self.table.c.org_id == org)
            .order_by(self.table.c.seq)
            .execution_options(yield_per=2000)
        )
        yield from session.execute(stmt)


@dataclass(frozen=True)
class _Walk:
    """One verification pass of a chain: its keys and the checkpoint it is held against."""

    check: ChainCheck
    keys: ChainKeys | None
    anchored: AnchoredHeads
    anchored_at: str

    def check_org(self, session: Session, org: uuid.UUID, head: tuple[int, str]) -> Problem | None:
        """The first break in ``org``'s chain, or ``None`` when it is whole."""
        expected_seq, running = 1, GENESIS
        seen: dict[str, int] = {GENESIS: 0}
        previous_id = ""
        keyed = False
        known = self.keys.keys if self.keys is not None else {}
        anchor = self.anchored.get(org)
        for row in self.check.rows(session, org):
            data = row._mapping
            seq = int(data["seq"])
            ident = str(data.get("id", seq))
            key_id = str(data["key_id"])
            payload = {f: data[f] for f in self.check.fields}
            if seq > expected_seq:
                return self._problem(
                    org,
                    ident,
                    f"row(s) {expected_seq}..{seq - 1} were deleted (row {seq}, id {ident}, follows row {expected_seq - 1})",
                )
            if seq < expected_seq:
                return self._problem(
                    org, ident, f"row {seq} (id {ident}) was inserted: seq {seq} appears twice"
                )
            linked_back = data["prev_hash"] != running and data["prev_hash"] in seen
            if linked_back:
                return self._problem(
                    org,
                    previous_id,
                    f"row {seq - 1} (id {previous_id}) was inserted: row {seq} links past it to row {seen[data['prev_hash']]}",
                )
            if key_id == UNKEYED and keyed:
                return self._problem(
                    org,
                    ident,
                    f"row {seq} (id {ident}) was altered or inserted: it has no keyed hash, "
                    "but rows before it do",
                )
            if key_id != UNKEYED and key_id not in known:
                return self._problem(
                    org,
                    ident,
                    f"row {seq} (id {ident}) was hashed with chain key '{key_id}', which is not "
                    "among the chain keys: add the key again, or the row was forged",
                )
            keyed = keyed or key_id != UNKEYED
            expected = (
                chain_hash(data["prev_hash"], payload)
                if key_id == UNKEYED
                else self.keys.hash(key_id, data["prev_hash"], payload)  # type: ignore[union-attr]
            )
            if expected != data["hash"]:
                return self._problem(
                    org,
                    ident,
                    f"row {seq} (id {ident}) was altered: its content no longer matches its hash",
                )
            if data["prev_hash"] != running:
                return self._problem(
                    org,
                    ident,
                    f"the row before row {seq} (id {ident}) was deleted or replaced: the link is broken",
                )
            running = data["hash"]
            if anchor is not None and seq == anchor[0] and running != anchor[1]:
                return self._problem(
                    org,
                    ident,
                    f"row {seq} (id {ident}) does not match the checkpoint of {self.anchored_at}: "
                    f"the chain up to it was rewritten",
                )
            seen[running] = seq
            previous_id = ident
            expected_seq += 1
        last = expected_seq - 1
        if anchor is not None and last < anchor[0]:
            return self._problem(
                org,
                None,
                f"the chain ends at row {last}, but the checkpoint of {self.anchored_at} "
                f"recorded row {anchor[0]}: rows {last + 1}..{anchor[0]} were deleted",
            )
        head_seq, head_hash = head
        if last > head_seq:
            return self._problem(
                org,
                None,
                f"row(s) {head_seq + 1}..{last} were inserted after the chain head ({head_seq})",
            )
        if last < head_seq:
            return self._problem(
                org, None, f"row(s) {last + 1}..{head_seq} were deleted from the end of the chain"
            )
        if running != head_hash:
            return self._problem(
                org, None, f"row {last} was altered or replaced: the chain head does not match it"
            )
        return None

    def _problem(self, org: uuid.UUID, row: str | None, message: str) -> Problem:
        return Problem(self.check.name, org, message, row)


AUDIT_CHECK = ChainCheck("audit", AUDIT_CHAIN, AuditEntry.__table__, AUDIT_FIELDS)  # type: ignore[arg-type]
