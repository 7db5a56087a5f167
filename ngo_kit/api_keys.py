"""Per-organisation API keys: credentials for machine clients that are not a person's session.

An owner creates a key (``tx.api_keys.create``) with a name, scopes (permissions the key may
use, each one the creator holds) and an optional expiry. The answer carries the key once:
``ngk_<lookup>_<secret>``. The lookup id is not secret and finds the row; the secret (32 random
bytes from ``secrets``) is stored only as HMAC-SHA256 under a key derived from the kit's secret
keys. The secret has 256 bits of entropy, so a slow password hash would add nothing but latency
to every call; a keyed hash also means a copy of the database alone cannot test guesses.

A request with ``Authorization: Bearer ngk_...`` to ``/api/orgs/{org}/...`` acts as the key
(``authenticate``): a ``KeyActor`` whose permissions are its scopes, as far as they are still
declared and its creator still holds them, in its own organisation only. A key that is unknown,
of another organisation, revoked, expired or with a wrong secret gets one answer
(``ApiKeyInvalid``) in comparable time: the row is read by lookup id and the hash computed and
compared (``hmac.compare_digest``) whether or not a row was found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import Mapped, mapped_column

from ngo_kit import throttle
from ngo_kit.audit import actor_label
from ngo_kit.db import Base, IdMixin, OrgMixin, TimestampMixin, new_id, utcnow
from ngo_kit.errors import NgoKitError, NotFound, ValidationFailed
from ngo_kit.operations import operation
from ngo_kit.schemas import InputModel, Instant, Name, ReadModel, Text, coerce
from ngo_kit.tenancy import ALL_PERMISSIONS, SYSTEM, KeyActor

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.kit import Kit

#: Every key starts with this, so a bearer token is known for a key before any lookup.
KEY_PREFIX = "ngk_"
#: The permission that creates, lists and revokes keys (held by owners and administrators).
MANAGE = "api_keys.manage"
_LOOKUP_BYTES = 8  # 16 hex characters
_SECRET_BYTES = 32  # 43 URL-safe characters
_TOKEN = re.compile(r"^ngk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DERIVE_LABEL = b"ngo-kit.api-key"
#: What a request with a malformed key is checked against, so it costs what a real one does.
_UNUSED_LOOKUP = "0" * (2 * _LOOKUP_BYTES)
_UNUSED_SECRET = "0" * 43


class ApiKeyInvalid(NgoKitError):
    """The API key is unknown, of another organisation, revoked, expired or wrong: one error
    for all, so a caller cannot tell which (401)."""

    code = "api_key_invalid"
    template = "The API key is not valid."


class ApiKeyThrottled(NgoKitError):
    """Too many calls with one key, or too many failed key attempts from one client (429).

    ``retry_after`` is how many seconds until the window ends (sent as ``Retry-After``).
    """

    code = "api_key_throttled"
    template = "Too many requests with API keys; try again in {retry_after} seconds."

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(retry_after=retry_after)


# --- model ------------------------------------------------------------------------------


class ApiKey(IdMixin, OrgMixin, TimestampMixin, Base):
    """One organisation's API key: its name, scopes and the keyed hash of its secret."""

    __tablename__ = "core_api_key"
    __table_args__ = (sa.UniqueConstraint("org_id", "lookup"),)

    name: Mapped[str] = mapped_column(sa.String(100))
    lookup: Mapped[str] = mapped_column(sa.String(16))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(sa.String(40))
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(sa.String(40))


API_KEY_TABLE: sa.Table = ApiKey.__table__  # type: ignore[assignment]


# --- schemas ----------------------------------------------------------------------------


class ApiKeyIn(InputModel):
    """A new API key: a name people recognise, the permissions it may use, when it ends."""

    name: Name = Field(min_length=1, max_length=100)
    scopes: list[Text] = Field(min_length=1, max_length=200)
    expires_at: Instant | None = None


class ApiKeyRead(ReadModel):
    """An API key as it is listed: never its secret. ``prefix`` is how it starts."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyRead):
    """A key just created, with its whole value in ``key``: shown this once, never again."""

    key: str


# --- hashing ----------------------------------------------------------------------------


def _hash_keys(kit: Kit) -> list[bytes]:
    """One HMAC key per ``settings.secret_keys`` entry, newest first (derived with a label of
    its own, so no other use of the secret shares it)."""
    return [
        hmac.new(k.get_secret_value().encode(), _DERIVE_LABEL, hashlib.sha256).digest()
        for k in kit.settings.secret_keys
    ]


def _secret_hash(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def _matches(kit: Kit, secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` under any of the secret keys (keys rotate:
    a key made under an older secret still works while that secret is listed). Every hash is
    computed and compared, with no early exit."""
    found = False
    for key in _hash_keys(kit):
        found |= hmac.compare_digest(_secret_hash(key, secret), stored)
    return found


# --- service ----------------------------------------------------------------------------


class ApiKeysService:
    """``tx.api_keys``: create, list and revoke the organisation's API keys (``api_keys.manage``)."""

    def __init__(self, tx: Context) -> None:
        self.tx = tx

    @operation("POST /api-keys", permission=MANAGE, status=201, custom=True, cli="create")
    def create(
        self, data: ApiKeyIn | dict[str, Any] | None = None, /, **kwargs: Any
    ) -> ApiKeyCreated:
        """Create a key; the answer's ``key`` is its only showing (store it in the client).

        Each scope must be a declared permission (``ValidationFailed`` on ``scopes``, rule
        ``unknown_permission``) that the creator holds (``PermissionDenied`` naming it), and
        never ``api_keys.manage`` (rule ``not_for_keys``): a key does not make keys. ``expires_at`` must lie ahead. Audited as ``api_key.created``.
        """
        tx = self.tx
        tx.require(MANAGE)
        spec = coerce(ApiKeyIn, data, kwargs)
        scopes = sorted(set(spec.scopes))
        for scope in scopes:
            if scope == ALL_PERMISSIONS or scope not in tx.kit.permissions:
                raise ValidationFailed(
                    "scopes",
                    "unknown_permission",
                    "is not a declared permission: {permission}",
                    permission=scope,
                )
            if scope == MANAGE:
                raise ValidationFailed(
                    "scopes",
                    "not_for_keys",
                    "cannot be given to an API key: {permission}",
                    permission=scope,
                )
        for scope in scopes:
            tx.require(scope)
        now = utcnow()
        if spec.expires_at is not None and spec.expires_at <= now:
            raise ValidationFailed("expires_at", "not_in_future")
        lookup = secrets.token_hex(_LOOKUP_BYTES)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        row = {
            "id": new_id(),
            "org_id": tx.org_id,
            "name": spec.name,
            "lookup": lookup,
            "secret_hash": _secret_hash(_hash_keys(tx.kit)[0], secret),
            "scopes": scopes,
            "created_by": actor_label(tx.actor),
            "created_at": now,
            "expires_at": spec.expires_at,
            "revoked_at": None,
            "revoked_by": None,
        }
        tx.connection.execute(sa.insert(API_KEY_TABLE).values(**row))
        tx.audit(
            "api_key.created",
            "api_key",
            row["id"],
            f"API key {spec.name} created",
            data={"name": spec.name, "scopes": scopes, "expires_at": spec.expires_at},
        )
        return ApiKeyCreated(**_read(row).model_dump(), key=f"{KEY_PREFIX}{lookup}_{secret}")

    @operation("GET /api-keys", permission=MANAGE, custom=True, name="list", cli="list")
    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKeyRead]:
        """The organisation's keys, oldest first, without secrets; revoked ones only when
        ``include_revoked``."""
        tx = self.tx
        tx.require(MANAGE)
        stmt = sa.select(API_KEY_TABLE).where(API_KEY_TABLE.c.org_id == tx.org_id)
        if not include_revoked:
            stmt = stmt.where(API_KEY_TABLE.c.revoked_at.is_(None))
        rows = tx.connection.execute(stmt.order_by(API_KEY_TABLE.c.id)).mappings()
        return [_read(row) for row in rows]

    @operation("POST /api-keys/{key_id}/revoke", permission=MANAGE, custom=True, cli="revoke")
    def revoke(self, key_id: uuid.UUID | str) -> ApiKeyRead:
        """Revoke a key at once: its next request is refused (``ApiKeyInvalid``). The row
        stays, with ``revoked_at``, for the audit trail; revoking twice changes nothing.
        ``NotFound`` for a key of another organisation. Audited as ``api_key.revoked``."""
        tx = self.tx
        tx.require(MANAGE)
        row = self._row(key_id)
        if row["revoked_at"] is not None:
            return _read(row)
        now = utcnow()
        tx.connection.execute(
            API_KEY_TABLE.update()
            .where(API_KEY_TABLE.c.org_id == tx.org_id, API_KEY_TABLE.c.id == row["id"])
            .values(revoked_at=now, revoked_by=actor_label(tx.actor))
        )
        tx.audit(
            "api_key.revoked",
            "api_key",
            row["id"],
            f"API key {row['name']} revoked",
            data={"name": row["name"]},
        )
        return _read({**row, "revoked_at": now})

    def _row(self, key_id: uuid.UUID | str) -> dict[str, Any]:
        try:
            ident = key_id if isinstance(key_id, uuid.UUID) else uuid.UUID(str(key_id))
        except ValueError:
            raise NotFound("API key", key_id) from None
        row = (
            self.tx.connection.execute(
                sa.select(API_KEY_TABLE).where(
                    API_KEY_TABLE.c.org_id == self.tx.org_id, API_KEY_TABLE.c.id == ident
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("API key", key_id)
        return dict(row)


def _read(row: Any) -> ApiKeyRead:
    return ApiKeyRead(
        id=row["id"],
        name=row["name"],
        prefix=f"{KEY_PREFIX}{row['lookup']}",
        scopes=list(row["scopes"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


# --- authentication ----------------------------------------------------------------------


def is_api_key(token: str) -> bool:
    """True when a bearer token has the shape of an API key (``ngk_``, 16 hex digits, ``_``,
    43 URL-safe characters): 64 characters, so no 43-character session token ever has it."""
    return _TOKEN.match(token) is not None


def authenticate(kit: Kit, org: str | None, token: str, client: str | None) -> KeyActor:
    """The ``KeyActor`` for a bearer ``token`` used on organisation ``org``.

    Raises ``ApiKeyInvalid`` for every kind of bad key, and ``ApiKeyThrottled`` when ``client``
    made too many failed attempts in the window (checked before the key is), or the key too
    many calls. A failed attempt is counted against ``client`` in its own unit of work.
    """
    settings = kit.settings
    window = settings.api_key_window_seconds
    client_key = throttle.throttle_key("apikey-client", client or "unknown")
    waited = throttle.wait(
        kit, client_key, limit=settings.api_key_failures_per_window, window_seconds=window
    )
    if waited is not None:
        raise ApiKeyThrottled(waited)
    actor = _verify(kit, org, token)
    if actor is None:
        retry = throttle.hit(
            kit, client_key, limit=settings.api_key_failures_per_window, window_seconds=window
        )
        if retry is not None:
            raise ApiKeyThrottled(retry)
        raise ApiKeyInvalid()
    retry = throttle.hit(
        kit,
        throttle.throttle_key("apikey", str(actor.id)),
        limit=settings.api_key_calls_per_window,
        window_seconds=window,
    )
    if retry is not None:
        raise ApiKeyThrottled(retry)
    return actor


def _verify(kit: Kit, org: str | None, token: str) -> KeyActor | None:
    """The key's actor when ``token`` is a live key of ``org``, else ``None``: the same reads
    and the same hashing whichever way it fails."""
    match = _TOKEN.match(token)
    lookup, secret = (match.group(1), match.group(2)) if match else (_UNUSED_LOOKUP, _UNUSED_SECRET)
    try:
        with kit.begin(org=org or None, actor=SYSTEM) as tx:
            org_id = tx.org.id if tx.org is not None else None
            row = (
                tx.connection.execute(
                    sa.select(API_KEY_TABLE).where(
                        API_KEY_TABLE.c.org_id == org_id, API_KEY_TABLE.c.lookup == lookup
                    )
                )
                .mappings()
                .first()
            )
            stored = row["secret_hash"] if row is not None else "0" * 64
            matched = _matches(kit, secret, stored)
            if row is None or not match or not matched or not _live(row):
                return None
            return KeyActor(
                id=row["id"],
                org_id=row["org_id"],
                name=row["name"],
                scopes=_effective_scopes(tx, row),
            )
    except NotFound:  # no such organisation: the same answer as no such key
        _matches(kit, secret, "0" * 64)
        return None


def _live(row: Any) -> bool:
    expires = row["expires_at"]
    return row["revoked_at"] is None and (expires is None or expires > utcnow())


def _effective_scopes(tx: Context, row: Any) -> frozenset[str]:
    """The key's scopes that are still declared permissions, that its creator (a person)
    still holds in the organisation, and never ``api_keys.manage``."""
    scopes = {s for s in row["scopes"] if s in tx.kit.permissions and s != MANAGE}
    try:
        creator = uuid.UUID(row["created_by"])
    except ValueError:  # the system actor (the CLI) created it
        return frozenset(scopes)
    held = tx.tenancy.permissions_of(creator)
    if ALL_PERMISSIONS in held:
        return frozenset(scopes)
    return frozenset(scopes & held)
