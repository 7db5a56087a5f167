"""Signatures: HMAC-SHA256 over ``"<timestamp>.<body>"``, sent as ``t=<timestamp>,v1=<hex>``.

The same scheme as Stripe's: the timestamp is signed with the body, so a receiver can refuse
a replayed request (older than its tolerance) as well as a forged or altered one. A header may
carry several ``v1`` values (while a secret is rotated); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-NGO-Kit-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for ``body``, signed now (or at ``timestamp``)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},{SCHEME}={compute_signature(secret, at, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs exactly ``body`` under ``secret`` within ``tolerance`` seconds.

    For receivers: pass the raw request body (the bytes, before parsing the JSON) and the
    ``X-NGO-Kit-Signature`` header. Signatures are compared in constant time. A missing or
    malformed header, a timestamp further than ``tolerance`` seconds from ``now`` (default: the
    clock) or no matching ``v1`` signature gives ``False``.
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance:
        return False
    expected = compute_signature(secret, timestamp, body).encode("ascii")
    # bytes, so a non-ASCII candidate is just a mismatch; every candidate is compared
    matches = [hmac.compare_digest(expected, c.encode("utf-8")) for c in candidates]
    return any(matches)
