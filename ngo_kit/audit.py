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
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from ngo_kit.db import Base, IdMixin, OrgMixin, new_id, utcnow
from ngo_kit.schemas import ReadModel

if TYPE_CHECKING:
    from ngo_kit.context import Context

GENESIS = "0" * 64


class ChainHead(Base):
    """The newest ``seq`` and ``hash`` of one chain of one organisation."""

    __tablename__ = "core_chain_head"

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("core_organisation.id", ondelete="RESTRICT"), primary_key=True
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


# --- canonical hashing --------------------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value != 0 else "0"
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def canonical(payload: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted-key JSON, UTC times to the microsecond, exact decimals."""
    return json.dumps(
        _canonical_value(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical payload."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical(payload))
    return digest.hexdigest()


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
    tx: Context, chain: str, table: sa.Table, rows: Sequence[dict[str, Any]], fields: Sequence[str]
) -> list[dict[str, Any]]:
    """Append several rows to one chain with a single head lock, insert and head update."""
    if not rows:
        return []
    session = tx.session
    org_id = tx.org_id
    seq, prev = lock_head(session, org_id, chain)
    out: list[dict[str, Any]] = []
    for values in rows:
        seq += 1
        row = {**values, "org_id": org_id, "seq": seq}
        row["prev_hash"] = prev
        row["hash"] = prev = chain_hash(prev, {f: row.get(f) for f in fields})
        out.append(row)
    session.execute(sa.insert(table), out) if len(out) > 1 else session.execute(
        sa.insert(table).values(out[0])
    )
    session.execute(
        sa.update(ChainHead)
        .where(ChainHead.org_id == org_id, ChainHead.chain == chain)
        .values(seq=seq, hash=prev)
    )
    return out


def lock_head(session: Session, org_id: uuid.UUID, chain: str) -> tuple[int, str]:
    """Lock and read a chain's head row, creating it on first use. Returns ``(seq, hash)``."""
    stmt = (
        sa.select(ChainHead.seq, ChainHead.hash)
        .where(ChainHead.org_id == org_id, ChainHead.chain == chain)
        .with_for_update()
    )
    row = session.execute(stmt).first()
    if row is None:
        from ngo_kit.db import insert_ignore

        session.execute(
            insert_ignore(session, ChainHead, org_id=org_id, chain=chain, seq=0, hash=GENESIS)
        )
        row = session.execute(stmt).one()
    return int(row[0]), str(row[1])


# --- writing audit entries ----------------------------------------------------------------


def write_audit(
    tx: Context,
    action: str,
    target_type: str,
    target_id: object,
    summary: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one audit record for the ``tx``'s organisation and actor. Used via ``tx.audit``."""
    values = {
        "id": new_id(),
        "at": utcnow(),
        "actor": actor_label(tx.actor),
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "summary": summary[:500],
        "data": _canonical_value(data or {}),
    }
    return append_chained(tx, "audit", AuditEntry.__table__, values, AUDIT_FIELDS)  # type: ignore[arg-type]


def actor_label(actor: object) -> str:
    """How an actor is written in audit rows: the account id, ``system`` or ``anonymous``."""
    if actor is None:
        return "anonymous"
    if isinstance(actor, uuid.UUID):
        return str(actor)
    return "system"


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


@dataclass(frozen=True)
class ChainCheck:
    """Verification of one hash chain: which table, which chain name, which fields are hashed."""

    name: str
    chain: str
    table: sa.Table
    fields: tuple[str, ...]

    def run(self, session: Session) -> list[Problem]:
        """Recompute the chain of every organisation; report the first break in each."""
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
        for org in sorted(orgs, key=str):
            problem = self._check_org(session, org, heads.get(org, (0, GENESIS)))
            if problem is not None:
                problems.append(problem)
        return problems

    def _rows(self, session: Session, org: uuid.UUID) -> Iterator[sa.Row[Any]]:
        cols = [self.table.c[f] for f in self.fields if f != "seq"]
        stmt = (
            sa.select(self.table.c.seq, self.table.c.prev_hash, self.table.c.hash, *cols)
            .where(self.table.c.org_id == org)
            .order_by(self.table.c.seq)
            .execution_options(yield_per=2000)
        )
        yield from session.execute(stmt)

    def _check_org(self, session: Session, org: uuid.UUID, head: tuple[int, str]) -> Problem | None:
        expected_seq, running = 1, GENESIS
        seen: dict[str, int] = {GENESIS: 0}
        previous_id = ""
        for row in self._rows(session, org):
            data = row._mapping
            seq = int(data["seq"])
            ident = str(data.get("id", seq))
            payload = {f: data[f] for f in self.fields}
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
            if chain_hash(data["prev_hash"], payload) != data["hash"]:
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
            seen[running] = seq
            previous_id = ident
            expected_seq += 1
        last = expected_seq - 1
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
        return Problem(self.name, org, message, row)


AUDIT_CHECK = ChainCheck("audit", "audit", AuditEntry.__table__, AUDIT_FIELDS)  # type: ignore[arg-type]
