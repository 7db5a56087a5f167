"""Inventory: a single receive and a single issue through the kit against raw SQL writing the
same rows, then the stock-level read and the trace of one donation at 10,000 and 1,000,000 moves.

Both sides of a write do, in one transaction: lock and read the move chain head, insert the
hashed move, move the head, add to (or take from) the stock level row, the per-source layer
row and the allocation row, and append the hashed audit row. The raw side uses the DB-API
(sqlite3 / psycopg) with the same hashing; it skips the kit's look-ups (item, locations) and
checks, which are the price of the kit and counted in its time.

The scaling part loads the extra moves with the raw DB-API (consistent rows: receipts, issues
allocated to them, layers and stock) because a million moves through the service would take
hours. Two ledgers are built, 10,000 and 1,000,000 moves, and the kit's reads on them are timed
alternately, so the machine's load falls on both alike. ``INVENTORY_BENCH_MOVES`` sets the big
one's size; ``INVENTORY_BENCH_PARTS=writes`` (or ``reads``) runs one part.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_core import raw_connection
from harness import compare, fresh_database, kit_problems, verdict

from ngo_kit import SYSTEM, Kit
from ngo_kit.audit import AUDIT_FIELDS, GENESIS, chain_hash
from ngo_kit.db import new_id, utcnow
from ngo_kit.modules.inventory.models import MOVE_FIELDS
from ngo_kit.testing import settings_for_tests

TARGET_WRITE = 2.0
TARGET_STOCK_READ = 1.2
TARGET_TRACE = 2.0
BIG = int(os.environ.get("INVENTORY_BENCH_MOVES", "1000000"))
SMALL = 10_000


class Raw:
    """Hand-written SQL for one organisation, on the DB-API."""

    def __init__(
        self, kit: Kit, org_id: Any, item_id: Any, wh_id: Any, donors_id: Any, out_id: Any
    ):
        self.conn, style = raw_connection(kit)
        self.sqlite = style == "qmark"
        self.p = "?" if self.sqlite else "%s"
        self.org, self.item, self.wh = org_id, item_id, wh_id
        self.donors, self.out = donors_id, out_id

    def key(self, value: Any) -> Any:
        if value is None:
            return None
        return value.hex if self.sqlite else value

    def when(self, value: Any) -> Any:
        return value.replace(tzinfo=None).isoformat(sep=" ") if self.sqlite else value

    def qty(self, value: Decimal) -> Any:
        # SQLite holds quantities as integer ten-thousandths (docs/modules/inventory.md)
        return int(value.scaleb(4)) if self.sqlite else value

    def begin(self) -> Any:
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        return cur

    def commit(self, cur: Any) -> None:
        cur.execute("COMMIT") if self.sqlite else self.conn.commit()

    def chain(
        self, cur: Any, chain: str, table: str, fields: tuple[str, ...], row: dict[str, Any]
    ) -> None:
        p = self.p
        cur.execute(
            f"SELECT seq, hash FROM core_chain_head WHERE org_id = {p} AND chain = {p}"
            + ("" if self.sqlite else " FOR UPDATE"),
            (self.key(self.org), chain),
        )
        found = cur.fetchone()
        if found is None:  # first use of this chain: create its head, as the kit does
            cur.execute(
                f"INSERT INTO core_chain_head (org_id, chain, seq, hash) VALUES ({p}, {p}, 0, {p})",
                (self.key(self.org), chain, GENESIS),
            )
            found = (0, GENESIS)
        seq, prev = found
        row.update(org_id=self.org, seq=seq + 1)
        digest = chain_hash(prev, {f: row.get(f) for f in fields})
        values = dict(row, prev_hash=prev, hash=digest)
        cols = list(values)
        params = []
        for c in cols:
            v = values[c]
            if c in ("id", "org_id", "group_id", "item_id", "lot_id", "from_location_id",
                     "to_location_id", "need_id", "document_id", "reverses_id"):  # fmt: skip
                v = self.key(v)
            elif c == "at":
                v = self.when(v)
            elif c in ("attachments", "data"):
                v = json.dumps(v)
            elif isinstance(v, Decimal):
                v = self.qty(v)
            params.append(v)
        cur.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([p] * len(cols))})", params
        )
        cur.execute(
            f"UPDATE core_chain_head SET seq = {p}, hash = {p} WHERE org_id = {p} AND chain = {p}",
            (seq + 1, digest, self.key(self.org), chain),
        )

    def audit(self, cur: Any, action: str, target: Any, summary: str, data: dict[str, Any]) -> None:
        row = {
            "id": new_id(), "at": utcnow(), "actor": "system", "action": action,
            "target_type": "inventory_move", "target_id": str(target), "summary": summary,
            "data": data,
        }  # fmt: skip
        self.chain(cur, "audit", "core_audit", AUDIT_FIELDS, row)

    def move(self, kind: str, src: Any, dst: Any, qty: Decimal, **extra: Any) -> dict[str, Any]:
        return {
            "id": new_id(), "at": utcnow(), "kind": kind, "group_id": new_id(), "key": None,
            "item_id": self.item, "lot_id": None, "from_location_id": src, "to_location_id": dst,
            "quantity": qty, "unit_value": None, "donor_ref": None, "donation_ref": None,
            "recipient_ref": None, "recipient_kind": None, "approved_by": None,
            "second_approved_by": None, "need_id": None, "document_id": None, "reason": "",
            "notes": "", "attachments": [], "reverses_id": None, "actor": "system", **extra,
        }  # fmt: skip

    def upsert(self, cur: Any, table: str, keys: list[str], values: dict[str, Any]) -> None:
        p = self.p
        cols = list(values)
        cur.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([p] * len(cols))})"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET quantity = {table}.quantity"
            " + excluded.quantity",
            list(values.values()),
        )

    def receive(self, n: int) -> None:
        cur = self.begin()
        qty = Decimal(1)
        move = self.move("receive", self.donors, self.wh, qty, donor_ref="d", donation_ref=f"R-{n}")
        p = self.p
        self.upsert(cur, "inventory_stock", ["org_id", "item_id", "location_id", "lot_key"], {
            "id": self.key(new_id()), "org_id": self.key(self.org), "item_id": self.key(self.item),
            "location_id": self.key(self.wh), "lot_key": "", "lot_id": None,
            "quantity": self.qty(qty),
        })  # fmt: skip
        self.chain(cur, "inventory_move", "inventory_move", MOVE_FIELDS, move)
        cur.execute(
            f"INSERT INTO inventory_allocation (id, org_id, move_id, source_id, quantity)"
            f" VALUES ({p}, {p}, {p}, {p}, {p})",
            (self.key(new_id()), self.key(self.org), self.key(move["id"]), self.key(move["id"]),
             self.qty(qty)),
        )  # fmt: skip
        self.upsert(
            cur, "inventory_layer",
            ["org_id", "item_id", "location_id", "lot_key", "source_id"],
            {"id": self.key(new_id()), "org_id": self.key(self.org), "item_id": self.key(self.item),
             "location_id": self.key(self.wh), "lot_key": "", "source_id": self.key(move["id"]),
             "source_seq": move["seq"], "quantity": self.qty(qty)},
        )  # fmt: skip
        self.audit(cur, "inventory.receive", move["group_id"], "receive 1 piece of kit",
                   {"item": "kit", "quantity": "1", "from": "donors", "to": "wh"})  # fmt: skip
        self.commit(cur)

    def issue(self, n: int) -> None:
        cur = self.begin()
        p = self.p
        qty = Decimal(1)
        cur.execute(
            f"UPDATE inventory_stock SET quantity = quantity - {p} WHERE org_id = {p}"
            f" AND item_id = {p} AND location_id = {p} AND lot_key = '' AND quantity >= {p}",
            (self.qty(qty), self.key(self.org), self.key(self.item), self.key(self.wh), self.qty(qty)),
        )  # fmt: skip
        assert cur.rowcount == 1
        cur.execute(
            f"SELECT id, source_id, source_seq, quantity FROM inventory_layer WHERE org_id = {p}"
            f" AND item_id = {p} AND location_id = {p} AND lot_key = '' AND quantity > 0"
            " ORDER BY source_seq LIMIT 8",
            (self.key(self.org), self.key(self.item), self.key(self.wh)),
        )
        layer_id, source_id, _seq, _have = cur.fetchone()
        cur.fetchall()
        cur.execute(
            f"UPDATE inventory_layer SET quantity = quantity - {p} WHERE id = {p} AND quantity >= {p}",
            (self.qty(qty), layer_id, self.qty(qty)),
        )
        move = self.move("issue", self.wh, self.out, qty, recipient_ref=f"c{n}",
                         recipient_kind="beneficiary", approved_by="system")  # fmt: skip
        self.chain(cur, "inventory_move", "inventory_move", MOVE_FIELDS, move)
        cur.execute(
            f"INSERT INTO inventory_allocation (id, org_id, move_id, source_id, quantity)"
            f" VALUES ({p}, {p}, {p}, {p}, {p})",
            (self.key(new_id()), self.key(self.org), self.key(move["id"]), source_id, self.qty(qty)),
        )  # fmt: skip
        self.audit(cur, "inventory.issue", move["group_id"], "issue 1 piece of kit",
                   {"item": "kit", "quantity": "1", "from": "wh", "to": "beneficiaries"})  # fmt: skip
        self.commit(cur)


def setup_org(kit: Kit, slug: str) -> Any:
    org = kit.create_organisation(slug, slug)
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.inventory.create_item(code="kit", name="Comfort kit")
        tx.inventory.create_location(code="wh", name="Warehouse")
        tx.inventory.create_location(code="shelf", name="Shelf", parent="wh")
        ids = {loc.code: loc.id for loc in tx.inventory.locations()}
        item = tx.inventory.item("kit").id
    return org, item, ids


def writes(kit: Kit) -> list[str]:
    org, _item, _ids = setup_org(kit, "bench")
    raw_org, raw_item, raw_ids = setup_org(kit, "bench-raw")
    raw = Raw(kit, raw_org.id, raw_item, raw_ids["wh"], raw_ids["donors"], raw_ids["beneficiaries"])
    counter = iter(range(10**9))

    def kit_receive() -> None:
        n = next(counter)
        with kit.begin(org=org.slug, actor=SYSTEM) as tx:
            tx.inventory.receive(item="kit", quantity=1, to="wh", donor="d", donation=f"K-{n}")

    def kit_issue() -> None:
        n = next(counter)
        with kit.begin(org=org.slug, actor=SYSTEM) as tx:
            tx.inventory.issue(item="kit", quantity=1, from_="wh", recipient=f"c{n}")

    lines = []
    result = compare("receive (1 move) through the kit", kit_receive, lambda: raw.receive(next(counter)),
                     repeat=300, warmup=30)  # fmt: skip
    lines.append(result.line(TARGET_WRITE))
    result = compare("issue (1 move, FIFO) through the kit", kit_issue, lambda: raw.issue(next(counter)),
                     repeat=300, warmup=30)  # fmt: skip
    lines.append(result.line(TARGET_WRITE))
    raw.conn.close()
    return lines


def grow(kit: Kit, raw: Raw, moves: int, batch_seq: list[int]) -> None:
    """Add ``moves`` moves: batches of one receipt and nine issues allocated to it (FIFO)."""
    p = raw.p
    cur = raw.begin()
    cur.execute(
        f"SELECT seq FROM core_chain_head WHERE org_id = {p} AND chain = 'inventory_move'",
        (raw.key(raw.org),),
    )
    seq = cur.fetchone()[0]
    move_rows: list[tuple[Any, ...]] = []
    alloc_rows: list[tuple[Any, ...]] = []
    layer_rows: list[tuple[Any, ...]] = []
    now = raw.when(utcnow())
    org, item = raw.key(raw.org), raw.key(raw.item)
    added = Decimal(0)
    for _ in range(moves // 10):
        batch_seq[0] += 1
        seq += 1
        receipt = new_id()
        receipt_seq = seq
        move_rows.append((raw.key(receipt), org, seq, now, "receive", raw.key(new_id()), item,
                          raw.key(raw.donors), raw.key(raw.wh), raw.qty(Decimal(100)),
                          "bulk donor", f"BULK-{batch_seq[0]}", None, None, "system"))  # fmt: skip
        alloc_rows.append(
            (raw.key(new_id()), org, raw.key(receipt), raw.key(receipt), raw.qty(Decimal(100)))
        )
        for i in range(9):
            seq += 1
            issue = new_id()
            move_rows.append((raw.key(issue), org, seq, now, "issue", raw.key(new_id()), item,
                              raw.key(raw.wh), raw.key(raw.out), raw.qty(Decimal(10)), None, None,
                              f"child-{i}", "beneficiary", "system"))  # fmt: skip
            alloc_rows.append(
                (raw.key(new_id()), org, raw.key(issue), raw.key(receipt), raw.qty(Decimal(10)))
            )
        layer_rows.append((raw.key(new_id()), org, item, raw.key(raw.wh), "", raw.key(receipt),
                           receipt_seq, raw.qty(Decimal(10))))  # fmt: skip
        added += 10
    cur.executemany(
        "INSERT INTO inventory_move (id, org_id, seq, at, kind, group_id, item_id, from_location_id,"
        " to_location_id, quantity, donor_ref, donation_ref, recipient_ref, recipient_kind, actor,"
        " reason, notes, attachments, prev_hash, hash)"
        f" VALUES ({', '.join([p] * 15)}, '', '', '[]', 'bulk', 'bulk')",
        move_rows,
    )
    cur.executemany(
        f"INSERT INTO inventory_allocation (id, org_id, move_id, source_id, quantity) VALUES ({p}, {p}, {p}, {p}, {p})",
        alloc_rows,
    )
    cur.executemany(
        "INSERT INTO inventory_layer (id, org_id, item_id, location_id, lot_key, source_id, source_seq,"
        f" quantity) VALUES ({', '.join([p] * 8)})",
        layer_rows,
    )
    cur.execute(
        f"UPDATE inventory_stock SET quantity = quantity + {p} WHERE org_id = {p} AND item_id = {p}"
        f" AND location_id = {p} AND lot_key = ''",
        (raw.qty(added), org, item, raw.key(raw.wh)),
    )
    cur.execute(
        f"UPDATE core_chain_head SET seq = {p} WHERE org_id = {p} AND chain = 'inventory_move'",
        (seq, org),
    )
    raw.commit(cur)


def settle(raw: Raw) -> None:
    """Let the database finish with the load (statistics, checkpoint) before timing reads."""
    if raw.sqlite:
        raw.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.conn.execute("ANALYZE")
        return
    raw.conn.commit()
    raw.conn.autocommit = True
    for table in ("inventory_move", "inventory_allocation", "inventory_layer", "inventory_stock"):
        raw.conn.execute(f"VACUUM ANALYZE {table}")
    raw.conn.execute("CHECKPOINT")
    raw.conn.autocommit = False
    time.sleep(2)


def ledger(name: str, moves: int) -> tuple[Kit, Any]:
    """A database whose organisation holds the traced donation among ``moves`` moves."""
    kit = Kit(
        settings=settings_for_tests(fresh_database(name)), modules=["inventory"], autoload=False
    )
    kit.upgrade()
    org, item, ids = setup_org(kit, "scale")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.receive(item="kit", quantity=60, to="wh", donor="Hope Foundation", donation="D-TRACE")
        inv.transfer(item="kit", quantity=30, from_="wh", to="shelf")
        for n in range(20):
            inv.issue(
                item="kit", quantity=2, from_="shelf" if n % 2 else "wh", recipient=f"child-{n}"
            )
    raw = Raw(kit, org.id, item, ids["wh"], ids["donors"], ids["beneficiaries"])
    batch, remaining = [0], moves - 22
    while remaining > 0:
        chunk = min(remaining, 100_000)
        grow(kit, raw, chunk, batch)
        remaining -= chunk
    settle(raw)
    raw.conn.close()
    return kit, org


def scaling() -> list[str]:
    """Reads against a 10k-move and a 1M-move ledger, timed alternately in the same minutes
    (as ``compare`` does for writes), so the machine's load falls on both sides alike."""
    start = time.perf_counter()
    small_kit, small_org = ledger("inventory_10k", SMALL)
    big_kit, big_org = ledger("inventory_1m", BIG)
    loaded = time.perf_counter() - start
    with big_kit.begin(org=big_org, actor=SYSTEM) as tx:
        count = tx.connection.exec_driver_sql("SELECT count(*) FROM inventory_move").scalar()

    def stock_read(kit: Kit, org: Any) -> Callable[[], None]:
        def run() -> None:
            with kit.begin(org=org.slug, actor=SYSTEM) as tx:
                tx.inventory.stock_level("kit", "shelf")

        return run

    def trace(kit: Kit, org: Any) -> Callable[[], None]:
        def run() -> None:
            with kit.begin(org=org.slug, actor=SYSTEM) as tx:
                report = tx.inventory.trace_donation("D-TRACE")
                assert report.received == report.distributed + report.on_hand == 60

        return run

    lines = [f"built a {SMALL}-move and a {count}-move ledger in {loaded:.0f} s"]
    for name, op, target in (
        ("stock level read", stock_read, TARGET_STOCK_READ),
        ("trace of one donation", trace, TARGET_TRACE),
    ):
        result = compare(
            f"{name}, {count} vs {SMALL} moves",
            op(big_kit, big_org),
            op(small_kit, small_org),
            repeat=400,
            warmup=40,
        )
        lines.append(result.line(target).replace(" kit ", " 1M ").replace(" raw ", " 10k "))
    small_kit.dispose()
    big_kit.dispose()
    return lines


def main() -> None:
    url = fresh_database("inventory")
    kit = Kit(settings=settings_for_tests(url), modules=["inventory"], autoload=False)
    kit.upgrade()
    parts = os.environ.get("INVENTORY_BENCH_PARTS", "writes,reads").split(",")
    print(f"database: {kit.engine.dialect.name}")
    problems = []
    if "writes" in parts:
        for line in writes(kit):
            print(line, flush=True)
        problems = kit_problems(kit)
        print("verify after the write benchmarks:", problems or "ok", flush=True)
    if "reads" in parts:
        for line in scaling():
            print(line, flush=True)
    kit.dispose()
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
    raise SystemExit(verdict())
