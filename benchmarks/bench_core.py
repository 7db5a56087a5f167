"""Core: an audited write through ``kit.begin()`` against raw SQL writing the same rows.

Both sides append one audit row to the organisation's hash chain in one transaction: lock
and read the chain head, insert the row with its hash, move the head. The raw side uses the
DB-API directly (sqlite3 or psycopg) with the same canonical hashing.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import compare, fresh_database, kit_problems, verdict

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import AUDIT_FIELDS, chain_hash
from ngo_kit.db import new_id, utcnow
from ngo_kit.testing import settings_for_tests

TARGET = 2.0


def raw_connection(kit: Kit) -> tuple[Any, str]:
    """A DB-API connection to the kit's database and its parameter style."""
    url = kit.engine.url
    if url.get_backend_name() == "sqlite":
        conn: Any = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn, "qmark"
    import psycopg

    options = url.query.get("options")
    conn = psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        dbname=url.database,
        options=options if isinstance(options, str) else None,
    )
    return conn, "format"


def main() -> None:
    url = fresh_database("core")
    kit = Kit(settings=settings_for_tests(url), modules=[], autoload=False)
    kit.upgrade()
    org = kit.create_organisation("bench", "Bench")
    raw_org = kit.create_organisation("bench-raw", "Bench raw")
    conn, style = raw_connection(kit)
    sqlite = style == "qmark"
    p = "?" if sqlite else "%s"
    org_key: Any = raw_org.id.hex if sqlite else raw_org.id
    counter = iter(range(10**9))

    def kit_write() -> None:
        n = next(counter)
        with kit.begin(org=org.slug, actor=SYSTEM) as tx:
            tx.audit("bench.write", "thing", n, "benchmark write", data={"n": n})

    def raw_write() -> None:
        n = next(counter)
        cur = conn.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(
            f"SELECT seq, hash FROM core_chain_head WHERE org_id = {p} AND chain = 'audit'"
            + ("" if sqlite else " FOR UPDATE"),
            (org_key,),
        )
        seq, prev = cur.fetchone()
        seq += 1
        row = {
            "id": new_id(),
            "org_id": raw_org.id,
            "seq": seq,
            "at": utcnow(),
            "actor": "system",
            "action": "bench.write",
            "target_type": "thing",
            "target_id": str(n),
            "summary": "benchmark write",
            "data": {"n": n},
        }
        digest = chain_hash(prev, {f: row[f] for f in AUDIT_FIELDS})
        at: Any = row["at"].replace(tzinfo=None).isoformat(sep=" ") if sqlite else row["at"]
        ident: Any = row["id"].hex if sqlite else row["id"]
        cur.execute(
            "INSERT INTO core_audit (id, org_id, seq, at, actor, action, target_type, target_id, summary, data,"
            f" prev_hash, hash) VALUES ({', '.join([p] * 12)})",
            (
                ident,
                org_key,
                seq,
                at,
                "system",
                "bench.write",
                "thing",
                str(n),
                "benchmark write",
                json.dumps({"n": n}),
                prev,
                digest,
            ),
        )
        cur.execute(
            f"UPDATE core_chain_head SET seq = {p}, hash = {p} WHERE org_id = {p} AND chain = 'audit'",
            (seq, digest, org_key),
        )
        conn.commit() if not sqlite else cur.execute("COMMIT")

    result = compare(
        "audited write through kit.begin()", kit_write, raw_write, repeat=400, warmup=40
    )
    print(f"database: {kit.engine.dialect.name}")
    print(result.line(TARGET))
    problems = kit_problems(kit)
    print("verify:", problems or "ok")
    conn.close()
    kit.dispose()
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
    raise SystemExit(verdict())
