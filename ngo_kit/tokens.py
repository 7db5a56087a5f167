"""Signed tokens for links and codes: verification, password reset, invitations, QR, certificates.

One helper for every module (itsdangerous underneath):

* a **purpose** per kind of token: it is the signing salt, so a token made for one purpose never
  passes for another; a token signed for another purpose raises ``TokenWrongPurpose``;
* a **max age** per purpose, checked when the token is loaded (``TokenExpired``);
* **key rotation**: ``settings.secret_keys`` lists secrets, the first (newest) signs, all verify;
* an altered or forged token raises ``TokenTampered``. Single use is the caller's part: bind
  the payload to state that changes on use (a password hash, a row's status) and raise
  ``TokenUsed`` when it no longer matches.

``tokens_for(kit)`` returns the kit's ``TokenSigner``::

    signer = tokens_for(tx.kit)
    token = signer.sign("certificate", {"id": str(cert_id)})
    data = signer.load("certificate", token, max_age=None)
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import SecretStr

from ngo_kit.errors import TokenExpired, TokenTampered, TokenWrongPurpose

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

_SALT_PREFIX = "ngo-kit."


class TokenSigner:
    """Signs and loads purpose-bound, timestamped, URL-safe tokens with rotating keys.

    ``secret_keys`` is newest first (as in ``KitSettings.secret_keys``).
    """

    def __init__(self, secret_keys: Sequence[SecretStr | str]) -> None:
        keys = [k.get_secret_value() if isinstance(k, SecretStr) else str(k) for k in secret_keys]
        if not keys:
            raise ValueError("at least one secret key is needed to sign tokens")
        # itsdangerous signs with the last key and verifies with all: oldest first.
        self._keys = list(reversed(keys))
        self._serializers: dict[str, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        found = self._serializers.get(purpose)
        if found is None:
            found = URLSafeTimedSerializer(self._keys, salt=_SALT_PREFIX + purpose)
            self._serializers[purpose] = found
        return found

    def sign(self, purpose: str, data: Any) -> str:
        """A token carrying ``data`` (JSON-serialisable) for ``purpose``, stamped with now."""
        return str(self._serializer(purpose).dumps({"p": purpose, "d": data}))

    def load(self, purpose: str, token: str, *, max_age: dt.timedelta | int | None) -> Any:
        """The data of a valid ``purpose`` token no older than ``max_age`` (seconds or timedelta).

        Raises ``TokenExpired``, ``TokenWrongPurpose`` or ``TokenTampered``.
        """
        seconds = int(max_age.total_seconds()) if isinstance(max_age, dt.timedelta) else max_age
        serializer = self._serializer(purpose)
        try:
            payload = serializer.loads(str(token), max_age=seconds)
        except SignatureExpired:
            raise TokenExpired() from None
        except BadSignature:
            raise self._why_refused(purpose, str(token)) from None
        if not isinstance(payload, dict) or payload.get("p") != purpose:
            raise TokenTampered()
        return payload.get("d")

    def _why_refused(self, purpose: str, token: str) -> Exception:
        """Tell a token of another purpose (validly signed for it) from a forged one."""
        try:
            _ok, payload = self._serializer(purpose).loads_unsafe(token)
        except Exception:
            return TokenTampered()
        other = payload.get("p") if isinstance(payload, dict) else None
        if not isinstance(other, str) or other == purpose:
            return TokenTampered()
        try:
            self._serializer(other).loads(token)
        except BadSignature:
            return TokenTampered()
        return TokenWrongPurpose()


_SIGNERS: weakref.WeakKeyDictionary[Kit, TokenSigner] = weakref.WeakKeyDictionary()


def tokens_for(kit: Kit) -> TokenSigner:
    """The kit's token signer, built once from ``kit.settings.secret_keys``."""
    signer = _SIGNERS.get(kit)
    if signer is None:
        signer = TokenSigner(kit.settings.secret_keys)
        _SIGNERS[kit] = signer
    return signer


__all__ = ["TokenSigner", "tokens_for"]
