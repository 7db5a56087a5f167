"""What someone who can write the database does to a chain: rewrite rows and their hashes.

``rewrite`` reads a chain's rows, lets the test change the list (alter, insert, cut), then
writes it back renumbered, with every hash from the first change on recomputed, and moves the
chain head to the new end: the forgery a plain SHA-256 chain could not tell from the truth.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ngo_kit import Kit
from ngo_kit.audit import GENESIS, ChainCheck, ChainHead
from ngo_kit.chain_keys import UNKEYED, ChainKeys, chain_hash

Row = dict[str, Any]


def chain_rows(kit: Kit, check: ChainCheck, org_id: uuid.UUID) -> list[Row]:
    """Every column of ``org_id``'s rows of ``check``'s chain, in ``seq`` order."""
    table = check.table
    with kit.engine.connect() as conn:
        result = conn.execute(
            sa.select(table).where(table.c.org_id == org_id).order_by(table.c.seq)
        )
        return [dict(row._mapping) for row in result]


def rewrite(
    kit: Kit,
    check: ChainCheck,
    org_id: uuid.UUID,
    change: Callable[[list[Row]], list[Row]],
    *,
    keys: ChainKeys | None = None,
    key_id: str | None = None,
) -> list[Row]:
    """Replace ``org_id``'s chain with ``change(rows)``, rehashed from the first changed row.

    Without ``keys`` the forger hashes with plain SHA-256 (all they can do without a chain
    key), labelling rows ``key_id`` (default: the label the rows before carry). With ``keys``
    the forger holds the chain key too. Returns the rows as written.
    """
    table = check.table
    before = chain_rows(kit, check, org_id)
    after = change([dict(r) for r in before])
    prev = GENESIS
    first = len(after) + 1  # the seq from which rows are written anew
    for seq, row in enumerate(after, start=1):
        original = before[seq - 1] if seq <= len(before) else None
        if original is None or any(row[k] != original[k] for k in row):
            first = min(first, seq)
        row["seq"] = seq
        if seq >= first:
            payload = {f: row[f] for f in check.fields}
            label = key_id or row.get("key_id") or UNKEYED
            row["key_id"] = label
            row["prev_hash"] = prev
            row["hash"] = (
                keys.hash(label, prev, payload)
                if keys is not None and label != UNKEYED
                else chain_hash(prev, payload)
            )
        prev = row["hash"]
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.org_id == org_id, table.c.seq >= first))
        if after[first - 1 :]:
            conn.execute(sa.insert(table), after[first - 1 :])
        conn.execute(
            sa.update(ChainHead)
            .where(ChainHead.org_id == org_id, ChainHead.chain == check.chain)
            .values(seq=len(after), hash=prev)
        )
    return after
