"""The keys that chain hashes are made with, and the keyed hash itself.

A chain row's hash is an HMAC-SHA256 (Python's ``hmac``), so someone who can write the
database but does not hold a chain key cannot compute the hash of a row they add or change.
Each row stores the id of the key it was hashed with (``key_id``):

* ``NGO_KIT_CHAIN_KEYS`` lists ``ID:SECRET`` pairs, newest first: the first hashes new rows,
  every one verifies the rows stored under its id. Keys rotate by putting a new pair first;
  an old pair stays as long as rows hashed with it should verify.
* Without it, one key per ``NGO_KIT_SECRET_KEYS`` entry is derived with a purpose label
  (ids ``s`` + 8 hex digits of the derived key's fingerprint), newest first likewise.
* ``sha256`` is reserved for rows written before chains were keyed: their hash is the plain
  SHA-256 over the previous hash and the row (``chain_hash``), and they still verify.

Each row is hashed with a *row key*, ``HMAC(chain key, the row's content without seq)``, and
its hash is ``HMAC(row key, previous hash + the row's canonical bytes)``. PostgreSQL appends in
one statement (``ngo_kit.audit``), so it computes that outer HMAC from the row key with its
built-in SHA-256; the chain key itself never leaves the process, and a row key is good only
for the content it was made for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from ngo_kit.settings import KitSettings

#: The key id of rows hashed before chains were keyed (plain SHA-256, no key).
UNKEYED = "sha256"
KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,16}")
_DERIVE_LABEL = b"ngo-kit.chain-key"
_ROW_LABEL = b"ngo-kit.chain-row:"
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
_INNER_PAD = bytes(b ^ 0x36 for b in range(256))  # RFC 2104's ipad and opad, as the
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))  # translation tables Python's hmac uses

#: Stands for ``seq`` while a row's canonical bytes are cut in two around it (random per
#: process, so no stored value can contain it).
_SEQ_MARK_VALUE = f"ngo-kit-seq-{uuid.uuid4().hex}"
SEQ_MARK = json.dumps(_SEQ_MARK_VALUE).encode("ascii")


def key_id_column() -> Mapped[str]:
    """The ``key_id`` column every chained table has: the chain key its row was hashed with
    (``sha256`` for rows written before chains were keyed, which is what migrations give
    existing rows)."""
    return mapped_column(sa.String(16), server_default=UNKEYED)


def canonical_value(value: Any) -> Any:
    """``value`` as JSON holds it: UUIDs and decimals as text, times in UTC to the microsecond."""
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
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_value(v) for v in value]
    return value


def canonical(payload: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: sorted-key JSON, UTC times to the microsecond, exact decimals."""
    return json.dumps(
        canonical_value(dict(payload)), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def chain_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """The unkeyed hash of rows stored under key id ``sha256``: SHA-256 over the previous hash
    and the canonical payload (how every row was hashed before chains were keyed)."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical(payload))
    return digest.hexdigest()


def canonical_around_seq(payload: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    """A row's canonical bytes before and after its ``seq`` value (``None`` without ``seq``).

    ``before + str(seq) + after`` are the very bytes ``canonical`` gives for the row.
    """
    if "seq" not in payload:
        return None
    text = canonical({**payload, "seq": _SEQ_MARK_VALUE})
    before, mark, after = text.partition(SEQ_MARK)
    if not mark or SEQ_MARK in after:
        return None
    return before, after


@dataclass(frozen=True)
class RowHashing:
    """What hashing one row needs: its canonical bytes around ``seq`` and its row key."""

    before: bytes
    after: bytes
    row_key: bytes

    def hash(self, prev_hash: str, seq: int | None) -> str:
        """The row's chain hash after ``prev_hash`` at ``seq``."""
        middle = b"" if seq is None else str(int(seq)).encode("ascii")
        message = prev_hash.encode("ascii") + self.before + middle + self.after
        return hmac.digest(self.row_key, message, "sha256").hex()

    def pads(self) -> tuple[bytes, bytes]:
        """The row key XOR HMAC's inner and outer pads (RFC 2104), for the database to finish
        the HMAC with SHA-256 alone. Checked against ``hash`` on every append."""
        key = self.row_key.ljust(_BLOCK, b"\0")
        return key.translate(_INNER_PAD), key.translate(_OUTER_PAD)


class ChainKeys:
    """The deployment's chain keys: ``signing_id`` hashes new rows, all of them verify.

    ``keys`` maps key id to secret bytes, newest first.
    """

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one chain key is needed")
        self.keys: dict[str, bytes] = dict(keys)
        self.signing_id: str = keys[0][0]

    @classmethod
    def from_settings(cls, settings: KitSettings) -> ChainKeys:
        """The keys ``NGO_KIT_CHAIN_KEYS`` lists, or keys derived from ``NGO_KIT_SECRET_KEYS``.

        Raises ``ConfigurationError`` ``core.E020`` for a pair that is not ``ID:SECRET`` with
        an id of 1 to 16 letters, digits, ``.``, ``_`` or ``-``, for a reserved or repeated
        id, and (in production) for a secret shorter than the secret keys' minimum.
        """
        from ngo_kit.settings import MIN_SECRET_LENGTH

        pairs: list[tuple[str, bytes]] = []
        for n, entry in enumerate(settings.chain_keys, start=1):
            key_id, sep, secret = entry.get_secret_value().partition(":")
            key_id = key_id.strip()
            if not sep or not secret or not KEY_ID.fullmatch(key_id) or key_id == UNKEYED:
                raise ConfigurationError(
                    "core.E020",
                    "chain key #{n} of NGO_KIT_CHAIN_KEYS must be ID:SECRET, the id 1 to 16 "
                    "letters, digits, '.', '_' or '-' and not '{reserved}'",
                    n=n,
                    reserved=UNKEYED,
                )
            if any(key_id == known for known, _ in pairs):
                raise ConfigurationError(
                    "core.E020", "chain key id '{key_id}' is listed twice", key_id=key_id
                )
            if settings.environment == "production" and len(secret) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    "core.E020",
                    "chain key '{key_id}' is shorter than {length} characters, which "
                    "production refuses",
                    key_id=key_id,
                    length=MIN_SECRET_LENGTH,
                )
            pairs.append((key_id, secret.encode("utf-8")))
        if not pairs:
            for secret_key in settings.secret_keys:
                derived = hmac.digest(
                    secret_key.get_secret_value().encode("utf-8"), _DERIVE_LABEL, "sha256"
                )
                pairs.append(("s" + hashlib.sha256(derived).hexdigest()[:8], derived))
        return cls(pairs)

    def row_hashing(self, key_id: str, payload: Mapping[str, Any]) -> RowHashing:
        """How to hash a row with the key ``key_id`` (which must be one of ``keys``)."""
        parts = canonical_around_seq(payload)
        before, after = parts if parts is not None else (canonical(payload), b"")
        return self.hashing(key_id, before, after)

    def hashing(self, key_id: str, before: bytes, after: bytes) -> RowHashing:
        """How to hash a row whose canonical bytes around ``seq`` are ``before`` and ``after``:
        its row key is the HMAC, under the chain key, of those bytes (the content, not the
        place in the chain)."""
        row_key = hmac.digest(self.keys[key_id], _ROW_LABEL + before + after, "sha256")
        return RowHashing(before, after, row_key)

    def hash(self, key_id: str, prev_hash: str, payload: Mapping[str, Any]) -> str:
        """The chain hash of a row stored under ``key_id`` after ``prev_hash``.

        ``sha256`` gives the unkeyed hash of rows written before chains were keyed; any other
        id must be one of ``keys`` (``KeyError`` otherwise).
        """
        if key_id == UNKEYED:
            return chain_hash(prev_hash, dict(payload))
        seq = payload.get("seq")
        return self.row_hashing(key_id, payload).hash(prev_hash, seq)


__all__ = [
    "UNKEYED",
    "ChainKeys",
    "RowHashing",
    "canonical",
    "canonical_around_seq",
    "canonical_value",
    "chain_hash",
    "key_id_column",
]
