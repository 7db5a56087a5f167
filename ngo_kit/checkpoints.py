"""Signed checkpoints of the chains' heads, kept outside the database.

A checkpoint records, for every chain the kit checks and every organisation, the newest row's
``seq``, ``hash`` and id, signed with the newest chain key (an HMAC-SHA256 with Python's
``hmac``, under a key derived from the chain key for this purpose alone; signing tokens stays
with ``ngo_kit.tokens``). ``ngo-kit anchor`` writes one to a file, to a directory (one timestamped file per run)
or through the outbox to a channel (an email or webhook address), and is meant to run from
cron. ``ngo-kit verify --against CHECKPOINT`` then holds every chain to it: a chain must pass
through each recorded head with the same hash (history before it was not rewritten) and must
not end before it (its newest rows were not cut off, even with the head row moved back).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ngo_kit.audit import ChainCheck, ChainHead
from ngo_kit.chain_keys import ChainKeys, canonical
from ngo_kit.errors import CheckpointRefused, LocalisedText

if TYPE_CHECKING:
    from ngo_kit.audit import AnchoredHeads

#: The ``format`` of a checkpoint document.
FORMAT = "ngo-kit checkpoint 1"
_PURPOSE = b"ngo-kit.chain-checkpoint"
_FILE_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class AnchoredHead:
    """One chain's head of one organisation, as a checkpoint records it."""

    chain: str
    org_id: uuid.UUID
    seq: int
    hash: str
    last_id: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """The heads of every chain at ``taken_at``, signed with chain key ``key_id``."""

    taken_at: dt.datetime
    key_id: str
    heads: tuple[AnchoredHead, ...]
    signature: str = field(default="", compare=False)

    def body(self) -> dict[str, Any]:
        """The signed part, as JSON holds it."""
        return {
            "format": FORMAT,
            "taken_at": self.taken_at,
            "key_id": self.key_id,
            "chains": [
                {
                    "chain": h.chain,
                    "org_id": h.org_id,
                    "seq": h.seq,
                    "hash": h.hash,
                    "last_id": h.last_id,
                }
                for h in self.heads
            ],
        }

    def to_json(self) -> str:
        """The checkpoint document: its body and signature, indented for people to read."""
        document = json.loads(canonical(self.body()))
        document["signature"] = self.signature
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    def heads_of(self, chain: str) -> AnchoredHeads:
        """``chain``'s recorded heads by organisation: ``(seq, hash)``."""
        return {h.org_id: (h.seq, h.hash) for h in self.heads if h.chain == chain}

    @property
    def label(self) -> str:
        """How problems name this checkpoint: its time, in UTC."""
        return self.taken_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signature(keys: ChainKeys, key_id: str, body: bytes) -> str:
    """HMAC-SHA256 of ``body`` under the checkpoint key derived from chain key ``key_id``."""
    signing_key = hmac.digest(keys.keys[key_id], _PURPOSE, "sha256")
    return hmac.digest(signing_key, body, "sha256").hex()


def read_heads(session: Session, checks: Sequence[object]) -> tuple[AnchoredHead, ...]:
    """The current head of every chain of ``checks`` and every organisation, with the id of the
    newest row, read in ``session``'s snapshot."""
    heads: list[AnchoredHead] = []
    for check in checks:
        if not isinstance(check, ChainCheck):
            continue
        table = check.table
        last_id = table.c.id if "id" in table.c else sa.null()
        rows = session.execute(
            sa.select(ChainHead.org_id, ChainHead.seq, ChainHead.hash, last_id)
            .outerjoin(
                table, sa.and_(table.c.org_id == ChainHead.org_id, table.c.seq == ChainHead.seq)
            )
            .where(ChainHead.chain == check.chain)
            .order_by(ChainHead.org_id)
        )
        for org_id, seq, hash_, row_id in rows:
            heads.append(
                AnchoredHead(
                    check.chain,
                    org_id,
                    int(seq),
                    str(hash_),
                    None if row_id is None else str(row_id),
                )
            )
    return tuple(heads)


def sign(heads: Sequence[AnchoredHead], keys: ChainKeys, now: dt.datetime) -> Checkpoint:
    """A checkpoint of ``heads`` taken at ``now``, signed with the newest chain key."""
    unsigned = Checkpoint(now, keys.signing_id, tuple(heads))
    signature = _signature(keys, keys.signing_id, canonical(unsigned.body()))
    return Checkpoint(now, keys.signing_id, tuple(heads), signature)


def write(checkpoint: Checkpoint, to: Path) -> Path:
    """Write ``checkpoint`` to the file ``to``, or to a new timestamped file when ``to`` is a
    directory; returns the path written. The file appears whole or not at all."""
    target = to
    if to.is_dir():
        stamp = checkpoint.taken_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = to / f"{_FILE_PREFIX}{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".checkpoint-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(checkpoint.to_json())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def newest_in(directory: Path) -> Path:
    """The newest checkpoint file ``write`` put in ``directory`` (their names sort by time)."""
    found = sorted(directory.glob(f"{_FILE_PREFIX}*.json"))
    if not found:
        raise CheckpointRefused(
            source=str(directory), why=LocalisedText("no checkpoint file is in that directory")
        )
    return found[-1]


def load(source: Path | str | Mapping[str, Any], keys: ChainKeys) -> Checkpoint:
    """The checkpoint in the file (or the newest in the directory) ``source``, or in a parsed
    document, once its signature is checked with the chain key it names.

    Raises ``CheckpointRefused`` for a document that is not a checkpoint, one signed with a key
    that is not among the chain keys, and one whose signature does not match (altered or
    forged).
    """
    name = "document"
    if isinstance(source, Mapping):
        document: Any = dict(source)
    else:
        path = Path(source)
        if path.is_dir():
            path = newest_in(path)
        name = str(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointRefused(
                source=name,
                why=LocalisedText("it cannot be read as JSON ({error})", error=str(exc)),
            ) from None
    try:
        signature = str(document.pop("signature"))
        key_id = str(document["key_id"])
        if document.get("format") != FORMAT:
            raise ValueError(document.get("format"))
        checkpoint = Checkpoint(
            dt.datetime.fromisoformat(str(document["taken_at"]).replace("Z", "+00:00")),
            key_id,
            tuple(
                AnchoredHead(
                    str(h["chain"]),
                    uuid.UUID(str(h["org_id"])),
                    int(h["seq"]),
                    str(h["hash"]),
                    None if h.get("last_id") is None else str(h["last_id"]),
                )
                for h in document["chains"]
            ),
            signature,
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise CheckpointRefused(
            source=name, why=LocalisedText("it is not an ngo-kit checkpoint")
        ) from None
    if key_id not in keys.keys:
        raise CheckpointRefused(
            source=name,
            why=LocalisedText(
                "it was signed with chain key '{key_id}', which is not among the chain keys",
                key_id=key_id,
            ),
        )
    expected = _signature(keys, key_id, canonical(document))
    if not hmac.compare_digest(expected, signature):
        raise CheckpointRefused(
            source=name,
            why=LocalisedText("its signature does not match: it was altered or forged"),
        )
    return checkpoint


__all__ = ["AnchoredHead", "Checkpoint", "load", "newest_in", "read_heads", "sign", "write"]
