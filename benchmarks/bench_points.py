"""Points: the kit's ledger writes against raw DB-API code writing the same rows, in one run.

1. A single award: the operation row, the two balance updates, two hash-chained entries, the
   lot, the three leaderboard totals and the audit row, in one transaction (target <= 2x).
2. A batch award to 10,000 members (``award_many``) against raw ``executemany`` of the same
   rows (target <= 1.5x).
3. ``balance()`` with 1,000,000 entries in the ledger against 1,000 (target <= 1.2x). The
   million entries are bulk-loaded (``executemany`` on SQLite, ``COPY`` on PostgreSQL) as a
   balanced ledger; their hashes are not chained (nothing here verifies them).

``NGO_KIT_BENCH_DATABASE_URL=postgresql://...`` runs it on PostgreSQL (new schemas each run);
``BENCH_POINTS_ENTRIES`` lowers the million for a quick look.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from harness import compare, fresh_database, kit_problems, verdict

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import AUDIT_FIELDS, chain_hash
from ngo_kit.db import new_id, utcnow
from ngo_kit.modules.points.models import ENTRY_FIELDS
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import settings_for_tests

BATCH = 10_000
BIG = int(os.environ.get("BENCH_POINTS_ENTRIES", "1000000"))


class Raw:
    """Hand-written ledger writes on the DB-API (sqlite3 or psycopg), one transaction per call."""

    def __init__(self, kit: Kit, org: OrgRead) -> None:
        url = kit.engine.url
        self.sqlite = url.get_backend_name() == "sqlite"
        if self.sqlite:
            self.conn: Any = sqlite3.connect(str(url.database), isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        else:
            import psycopg

            options = url.query.get("options")
            self.conn = psycopg.connect(
                host=url.host,
                port=url.port or 5432,
                user=url.username,
                dbname=url.database,
                options=options if isinstance(options, str) else None,
            )
        self.p = "?" if self.sqlite else "%s"
        self.org = org

    # values as each driver stores them (SQLAlchemy stores UUIDs as hex text on SQLite)
    def u(self, value: uuid.UUID) -> Any:
        return value.hex if self.sqlite else value

    def t(self, value: dt.datetime) -> Any:
        return value.replace(tzinfo=None).isoformat(sep=" ") if self.sqlite else value

    def begin(self) -> Any:
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        return cur

    def commit(self, cur: Any) -> None:
        cur.execute("COMMIT") if self.sqlite else self.conn.commit()

    def among(self, values: Sequence[Any]) -> str:
        """`` IN (?, ...)``; on PostgreSQL ``= ANY(?)`` with one array parameter (much faster)."""
        return " IN (" + ", ".join("?" * len(values)) + ")" if self.sqlite else " = ANY(?)"

    def listed(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(values) if self.sqlite else (list(values),)

    def q(self, sql: str) -> str:
        return sql.replace("?", self.p)

    def award(self, awards: Sequence[tuple[uuid.UUID, int]], reason: str) -> None:
        """Award points to members: the same rows ``award``/``award_many`` write."""
        org = self.u(self.org.id)
        now = utcnow()
        cur = self.begin()
        # As an application developer writes it from the schema: the accounts by the unique
        # (org_id, kind, member_id) key, the organisation's issuance account on its own.
        cur.execute(
            self.q("SELECT id FROM points_account WHERE org_id = ? AND kind = 'issuance'"), (org,)
        )
        issuance = cur.fetchone()[0]
        wanted = [self.u(m) for m, _ in awards]
        accounts: dict[Any, Any] = {}
        for start in range(0, len(wanted), 2000):
            chunk = wanted[start : start + 2000]
            cur.execute(
                self.q(
                    "SELECT member_id, id FROM points_account"
                    " WHERE org_id = ? AND kind = 'member' AND member_id" + self.among(chunk)
                ),
                (org, *self.listed(chunk)),
            )
            accounts.update(cur.fetchall())
        txns = []
        for member, points in awards:
            txns.append((new_id(), member, points))
        cur.executemany(
            self.q(
                "INSERT INTO points_txn (id, org_id, kind, key, member_id, counterparty_id, points,"
                " reason, reference, rule_id, reverses_id, created_at)"
                " VALUES (?, ?, 'award', NULL, ?, NULL, ?, ?, '', NULL, NULL, ?)"
            ),
            [(self.u(t), org, self.u(m), n, reason, self.t(now)) for t, m, n in txns],
        )
        total = sum(n for _, _, n in txns)
        member_accounts = [accounts[self.u(m)] for _, m, _ in txns]
        ordered = sorted(
            [(str(a), a, n) for a, (_, _, n) in zip(member_accounts, txns, strict=True)]
            + [(str(issuance), issuance, -total)]
        )
        balances: dict[Any, int] = {}
        if len(ordered) <= 4:
            for _, acc, delta in ordered:
                earn = 0 if acc == issuance else delta
                cur.execute(
                    self.q(
                        "UPDATE points_account SET balance = balance + ?, earned = earned + ?"
                        " WHERE id = ? RETURNING balance"
                    ),
                    (delta, earn, acc),
                )
                balances[acc] = cur.fetchone()[0]
        if len(ordered) > 4:
            cur.executemany(
                self.q(
                    "UPDATE points_account SET balance = balance + ?, earned = earned + ? WHERE id = ?"
                ),
                [(d, 0 if a == issuance else d, a) for _, a, d in ordered],
            )
            ids = [a for _, a, _ in ordered]
            for start in range(0, len(ids), 2000):
                chunk = ids[start : start + 2000]
                cur.execute(
                    self.q("SELECT id, balance FROM points_account WHERE id" + self.among(chunk)),
                    self.listed(chunk),
                )
                balances.update(cur.fetchall())
        # entries, chained
        cur.execute(
            self.q(
                "SELECT seq, hash FROM core_chain_head WHERE org_id = ? AND chain = 'points'"
                + ("" if self.sqlite else " FOR UPDATE")
            ),
            (org,),
        )
        seq, prev = cur.fetchone()
        running_issuance = balances[issuance] + total
        rows = []
        for (txn, _member, points), acc in zip(txns, member_accounts, strict=True):
            running_issuance -= points
            for account, amount, after in (
                (issuance, -points, running_issuance),
                (acc, points, balances[acc]),
            ):
                seq += 1
                entry = {
                    "id": new_id(),
                    "org_id": self.org.id,
                    "seq": seq,
                    "txn_id": txn,
                    "account_id": uuid.UUID(str(account)) if self.sqlite else account,
                    "kind": "award",
                    "amount": amount,
                    "balance_after": after,
                    "reason": reason,
                    "reference": "",
                    "actor": "system",
                    "at": now,
                }
                digest = chain_hash(prev, {f: entry[f] for f in ENTRY_FIELDS})
                rows.append(
                    (
                        self.u(entry["id"]),
                        org,
                        seq,
                        self.u(txn),
                        account,
                        "award",
                        amount,
                        after,
                        reason,
                        "",
                        "system",
                        self.t(now),
                        prev,
                        digest,
                    )
                )
                prev = digest
        cur.executemany(
            self.q(
                "INSERT INTO points_entry (id, org_id, seq, txn_id, account_id, kind, amount,"
                " balance_after, reason, reference, actor, at, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            rows,
        )
        cur.execute(
            self.q(
                "UPDATE core_chain_head SET seq = ?, hash = ? WHERE org_id = ? AND chain = 'points'"
            ),
            (seq, prev, org),
        )
        cur.executemany(
            self.q(
                "INSERT INTO points_lot (id, org_id, account_id, txn_id, amount, remaining,"
                " earned_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
            ),
            [
                (self.u(new_id()), org, acc, self.u(t), n, n, self.t(now))
                for (t, _, n), acc in zip(txns, member_accounts, strict=True)
            ],
        )
        year, week, _ = now.isocalendar()
        periods = ("all", f"{now.year:04d}-{now.month:02d}", f"{year:04d}-W{week:02d}")
        cur.executemany(
            self.q(
                "INSERT INTO points_tally (org_id, period, member_id, points) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (org_id, period, member_id)"
                " DO UPDATE SET points = points_tally.points + excluded.points"
            ),
            [(org, period, self.u(m), n) for _, m, n in txns for period in periods],
        )
        self.audit(cur, len(txns), total, reason, txns[0][0])
        self.commit(cur)

    def audit(self, cur: Any, count: int, total: int, reason: str, target: uuid.UUID) -> None:
        org = self.u(self.org.id)
        cur.execute(
            self.q(
                "SELECT seq, hash FROM core_chain_head WHERE org_id = ? AND chain = 'audit'"
                + ("" if self.sqlite else " FOR UPDATE")
            ),
            (org,),
        )
        seq, prev = cur.fetchone()
        seq += 1
        data = {"txn": str(target), "points": total, "reason": reason, "key": None}
        row = {
            "id": new_id(),
            "org_id": self.org.id,
            "seq": seq,
            "at": utcnow(),
            "actor": "system",
            "action": "points.awarded",
            "target_type": "points_account",
            "target_id": str(target),
            "summary": f"{total} points awarded to {count}",
            "data": data,
        }
        digest = chain_hash(prev, {f: row[f] for f in AUDIT_FIELDS})
        cur.execute(
            self.q(
                "INSERT INTO core_audit (id, org_id, seq, at, actor, action, target_type, target_id,"
                " summary, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                self.u(row["id"]),
                org,
                seq,
                self.t(row["at"]),
                "system",
                row["action"],
                row["target_type"],
                row["target_id"],
                row["summary"],
                json.dumps(data),
                prev,
                digest,
            ),
        )
        cur.execute(
            self.q(
                "UPDATE core_chain_head SET seq = ?, hash = ? WHERE org_id = ? AND chain = 'audit'"
            ),
            (seq, digest, org),
        )

    def close(self) -> None:
        self.conn.close()


def new_kit(name: str) -> Kit:
    kit = Kit(settings=settings_for_tests(fresh_database(name)), modules=["points"], autoload=False)
    kit.upgrade()
    return kit


def drop(kit: Kit) -> None:
    """Drop a benchmark's PostgreSQL schema (SQLite files are temporary anyway)."""
    url = kit.engine.url
    kit.dispose()
    options = url.query.get("options")
    if url.get_backend_name() != "postgresql" or not isinstance(options, str):
        return
    schema = options.split("search_path=", 1)[1]
    admin = sa.create_engine(url.difference_update_query(["options"]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def bench_writes() -> None:
    kit = new_kit("points_writes")
    org = kit.create_organisation("bench", "Bench")
    raw_org = kit.create_organisation("bench-raw", "Bench raw")
    raw = Raw(kit, raw_org)
    members = [uuid.uuid4() for _ in range(BATCH)]
    for target in (org, raw_org):  # open every account first: both sides then only update
        with kit.begin(org=target, actor=SYSTEM) as tx:
            tx.points.award_many(awards=dict.fromkeys(members, 1))
    few = members[:50]
    counter = iter(range(10**9))

    def kit_award() -> None:
        m = few[next(counter) % len(few)]
        with kit.begin(org=org.slug, actor=SYSTEM) as tx:
            tx.points.award(m, 5, reason="bench")

    def raw_award() -> None:
        raw.award([(few[next(counter) % len(few)], 5)], "bench")

    single = compare("single award", kit_award, raw_award, repeat=300, warmup=30)

    def kit_batch() -> None:
        with kit.begin(org=org.slug, actor=SYSTEM) as tx:
            tx.points.award_many(awards=dict.fromkeys(members, 2), reason="batch")

    def raw_batch() -> None:
        raw.award([(m, 2) for m in members], "batch")

    batch = compare("batch award to 10,000 members", kit_batch, raw_batch, repeat=7, warmup=1)
    print(f"database: {kit.engine.dialect.name}")
    print(single.line(2.0))
    print(batch.line(1.5))
    problems = kit_problems(kit)
    print("verify:", problems or "ok")
    raw.close()
    drop(kit)
    if problems:
        raise SystemExit(1)


def bulk_entries(kit: Kit, org: OrgRead, count: int) -> uuid.UUID:
    """Load ``count`` balanced award entries for one member quickly; return the member id."""
    member = uuid.uuid4()
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.points.award(member, 1)
    raw = Raw(kit, org)
    cur = raw.begin()
    cur.execute(
        raw.q(
            "SELECT kind, id FROM points_account WHERE org_id = ?"
            " AND (member_id = ? OR kind = 'issuance')"
        ),
        (raw.u(org.id), raw.u(member)),
    )
    accounts = dict(cur.fetchall())
    raw.commit(cur)
    pairs = max(0, (count - 2) // 2)
    now = utcnow()
    cur = raw.begin()
    cur.execute(
        raw.q("SELECT seq FROM core_chain_head WHERE org_id = ? AND chain = 'points'"),
        (raw.u(org.id),),
    )
    start = cur.fetchone()[0]
    o = raw.u(org.id)

    def rows() -> Any:
        seq = start
        for _ in range(pairs):
            txn = raw.u(new_id())
            for acc, amount in ((accounts["issuance"], -1), (accounts["member"], 1)):
                seq += 1
                yield (
                    raw.u(new_id()),
                    o,
                    seq,
                    txn,
                    acc,
                    "award",
                    amount,
                    0,
                    "bulk",
                    "",
                    "system",
                    raw.t(now),
                    "0" * 64,
                    "0" * 64,
                )

    columns = "id, org_id, seq, txn_id, account_id, kind, amount, balance_after, reason, reference, actor, at, prev_hash, hash"
    if raw.sqlite:
        cur.executemany(
            f"INSERT INTO points_entry ({columns}) VALUES ({', '.join('?' * 14)})", rows()
        )
    else:
        with cur.copy(f"COPY points_entry ({columns}) FROM STDIN") as copy:
            for row in rows():
                copy.write_row(row)
    cur.execute(
        raw.q("UPDATE points_account SET balance = balance + ? WHERE id = ?"),
        (pairs, accounts["member"]),
    )
    cur.execute(
        raw.q("UPDATE points_account SET balance = balance - ? WHERE id = ?"),
        (pairs, accounts["issuance"]),
    )
    cur.execute(
        raw.q("UPDATE core_chain_head SET seq = ? WHERE org_id = ? AND chain = 'points'"),
        (start + 2 * pairs, o),
    )
    raw.commit(cur)
    if not raw.sqlite:  # settle the load's aftermath (WAL, autovacuum) before measuring
        raw.conn.autocommit = True
        cur.execute("VACUUM (ANALYZE) points_entry")
        cur.execute("VACUUM (ANALYZE) points_account")
        cur.execute("CHECKPOINT")
    raw.close()
    return member


def bench_balance() -> None:
    small_kit, big_kit = new_kit("points_small"), new_kit("points_big")
    small_org = small_kit.create_organisation("small", "Small")
    big_org = big_kit.create_organisation("big", "Big")
    small_member = bulk_entries(small_kit, small_org, 1_000)
    big_member = bulk_entries(big_kit, big_org, BIG)

    def balance(kit: Kit, org: OrgRead, member: uuid.UUID) -> Any:
        def read() -> int:
            with kit.begin(org=org.slug, actor=SYSTEM) as tx:
                value: int = tx.points.balance(member)
                return value

        return read

    result = compare(
        f"balance() at {BIG:,} entries vs at 1,000",
        balance(big_kit, big_org, big_member),
        balance(small_kit, small_org, small_member),
        repeat=400,
        warmup=40,
    )
    print(result.line(1.2))
    drop(small_kit)
    drop(big_kit)


if __name__ == "__main__":
    parts = sys.argv[1:] or ["writes", "balance"]
    if "writes" in parts:
        bench_writes()
    if "balance" in parts:
        bench_balance()
    raise SystemExit(verdict())
