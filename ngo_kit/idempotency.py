"""Idempotency keys: one mechanism for every module's ``key``.

A ``key`` makes a mutating call safe to retry: the first call does the work, a repeat returns
the first result and writes nothing, whatever changed since (a rule's cap reached, a balance
spent, stock gone). A key belongs to whoever uses it and to what for: its *scope* is
(organisation, actor, operation, key), so member B sending member A's key starts B's own
operation and never sees A's. The call's parameters are kept as a *fingerprint*: the same key
in the same scope with other parameters is refused (``KeyReused``, code
``idempotency_key_reused``), as payment APIs do, instead of silently returning a result for
another request.

Modules store both beside the row the key protects (``key_scope`` and ``key_fingerprint``
columns, ``key_scope`` unique with ``org_id``), so claiming a key stays the INSERT-or-nothing
of the row itself: no round trip of its own.

Keys the kit derives itself from a business identity (a daily check-in, a plugin reacting to
an approved hours entry, the reversal of one operation) are *shared*: one scope whoever acts,
so the same event never counts twice because two people triggered it. The system actor and
``tx.elevated()`` blocks use the shared scope too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ngo_kit.audit import actor_label
from ngo_kit.errors import KeyReused

if TYPE_CHECKING:
    from ngo_kit.context import Context

#: Length of the stored scope and fingerprint (hex SHA-256).
DIGEST_LENGTH = 64
#: The actor part of a shared scope.
SHARED = "*"


def scope(tx: Context, operation: str, key: str | None, *, shared: bool = False) -> str | None:
    """The stored identity of ``key`` for ``operation`` (e.g. ``points.award``) by the actor.

    ``None`` without a key. ``shared`` (and the system actor, and ``tx.elevated()``) gives
    one scope whoever acts, for keys derived from a business identity.
    """
    if key is None:
        return None
    return scope_digest(operation, SHARED if shared or tx.is_system else actor_label(tx.actor), key)


def scope_digest(operation: str, who: str, key: str) -> str:
    """The stored scope of ``key`` for ``operation`` used by ``who`` (an actor label, or
    ``SHARED``). Stored in databases, so never changed; migrations use it for older rows."""
    return _digest(["scope", operation, who, key])


def legacy_who(actor: str | None) -> str:
    """The scope's actor part for a row written before scopes existed, from the actor label
    recorded with it (``system`` rows were the shared scope's)."""
    return SHARED if actor in (None, "system") else actor


def fingerprint(**params: Any) -> str:
    """A digest of a call's parameters (the key left out), to tell a retry from a new request."""
    return _digest(["call", {name: _plain(value) for name, value in params.items()}])


def keyed(
    tx: Context, operation: str, key: str | None, *, shared: bool = False, **params: Any
) -> dict[str, Any]:
    """The ``key``, ``key_scope`` and ``key_fingerprint`` values of the row ``key`` protects,
    ``params`` being the call's parameters (all ``None`` but ``key`` without a key)."""
    return {
        "key": key,
        "key_scope": scope(tx, operation, key, shared=shared),
        "key_fingerprint": fingerprint(**params) if key is not None else None,
    }


def check_same(key: str | None, stored: str | None, given: str | None) -> None:
    """Raise ``KeyReused`` when a used ``key``'s stored fingerprint differs from ``given``.

    A row stored before fingerprints existed (``stored`` is ``None``) accepts any repeat.
    """
    if key is not None and stored is not None and given is not None and stored != given:
        raise KeyReused(key)


def first_row(tx: Context, model: Any, keyed: dict[str, Any]) -> Any:
    """The row of ``model`` (an ORM class with ``org_id``, ``key_scope`` and
    ``key_fingerprint``) that ``keyed``'s key made first, or ``None``; ``KeyReused`` when that
    first call had other parameters."""
    row = tx.session.scalar(
        sa.select(model).where(model.org_id == tx.org_id, model.key_scope == keyed["key_scope"])
    )
    if row is not None:
        check_same(keyed["key"], row.key_fingerprint, keyed["key_fingerprint"])
    return row


def _digest(parts: list[Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """JSON-ready, and one spelling per value (``Decimal('5')`` and ``Decimal('5.00')`` alike)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, uuid.UUID | dt.date | dt.datetime):
        return str(value) if not isinstance(value, dt.date | dt.datetime) else value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "DIGEST_LENGTH",
    "SHARED",
    "KeyReused",
    "check_same",
    "fingerprint",
    "first_row",
    "keyed",
    "legacy_who",
    "scope",
    "scope_digest",
]
