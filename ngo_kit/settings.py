"""Kit settings, read from keyword arguments, then ``NGO_KIT_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ngo_kit.i18n import normalise_locale

DEFAULT_DATABASE_URL = "sqlite:///ngo_kit.db"
DEFAULT_SECRET = "ngo-kit-development-secret-change-me"
#: Shortest secret key production accepts (``secrets.token_urlsafe(32)`` gives 43 characters).
MIN_SECRET_LENGTH = 32


class KitSettings(BaseSettings):
    """Everything a deployment sets. Environment variables use the ``NGO_KIT_`` prefix.

    ``secret_keys`` is a comma-separated list in the environment: the first signs tokens, all
    of them verify, so keys rotate by putting a new one first and removing the old one later.
    The kit refuses to start with no key at all, with the development default outside
    development, and with a key shorter than ``MIN_SECRET_LENGTH`` in production.

    ``chain_keys`` (``NGO_KIT_CHAIN_KEYS``) lists ``ID:SECRET`` pairs, newest first, that chain
    hashes are keyed with (``ngo_kit.chain_keys``); without it they are derived from
    ``secret_keys``.
    """

    model_config = SettingsConfigDict(env_prefix="NGO_KIT_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    environment: Literal["development", "test", "production"] = "development"
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr(DEFAULT_SECRET)]
    )
    chain_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    default_locale: str = "en"
    disable_plugin_autoload: bool = False
    echo_sql: bool = False
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    outbox_dispatch_after_commit: bool = True
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_backoff_seconds: float = Field(default=5.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    #: How long a worker has to send a claimed message and record the outcome; a claim that
    #: runs out unrecorded counts as unconfirmed (see ``ngo_kit.outbox``). Longer than any
    #: channel's timeout.
    outbox_claim_seconds: float = Field(default=300.0, gt=0)
    pool_size: int = Field(default=5, ge=1)
    pool_pre_ping: bool = False
    pool_recycle_seconds: int = Field(default=1800, ge=-1)
    #: psycopg's ``prepare_threshold``: ``None`` (the default; ``none`` or empty in the
    #: environment) never prepares statements on the server, which is what a connection pooler
    #: in transaction mode (PgBouncer before 1.22) needs; a number prepares a statement once a
    #: connection has run it that many times (psycopg's own default is 5).
    postgres_prepare_threshold: int | None = Field(default=None, ge=0)
    org_cache_seconds: float = Field(default=5.0, ge=0)
    #: The most points one manual award (``tx.points.award``, each member of ``award_many``)
    #: by a person may give; the system actor is not limited. Earning rules have caps of their own.
    points_manual_award_max: int = Field(default=10_000, ge=1, le=1_000_000_000)
    #: API keys (``ngo_kit.api_keys``): the calls one key may make, and the failed key attempts
    #: one client may make, per window of ``api_key_window_seconds``; past either the answer is
    #: 429 with ``Retry-After`` until the window ends.
    api_key_calls_per_window: int = Field(default=600, ge=1)
    api_key_failures_per_window: int = Field(default=20, ge=1)
    api_key_window_seconds: int = Field(default=60, ge=1, le=86_400)
    #: The address people reach the deployment at (``https://relief.example.org``), from which
    #: links printed or sent outside the app are made absolute (a certificate's QR code).
    #: https, or http for localhost only; no query or fragment (checked at start-up,
    #: ``core.E022``). Unset, certificates carry no link, only a number to confirm by hand.
    public_base_url: str | None = None

    @field_validator("secret_keys", "chain_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("postgres_prepare_threshold", mode="before")
    @classmethod
    def _threshold_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
            return None
        return value

    @field_validator("public_base_url", mode="before")
    @classmethod
    def _no_base(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/")
            return value or None
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return normalise_locale(value)

    @property
    def uses_default_secret(self) -> bool:
        """True while any configured secret is the shipped development default."""
        return any(key.get_secret_value() == DEFAULT_SECRET for key in self.secret_keys)

    @property
    def short_secret_positions(self) -> list[int]:
        """Positions (1 = newest) of the keys shorter than ``MIN_SECRET_LENGTH``."""
        return [
            n
            for n, key in enumerate(self.secret_keys, start=1)
            if len(key.get_secret_value()) < MIN_SECRET_LENGTH
        ]


def public_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be ``public_base_url`` (a message with ``{url}``), or ``None``.

    It must be absolute, https (http only for localhost), with no query, fragment or user name.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - reading it checks that the port is a number
    except ValueError:
        return "NGO_KIT_PUBLIC_BASE_URL {url} is not a web address"
    if parts.scheme not in ("https", "http") or not host:
        return "NGO_KIT_PUBLIC_BASE_URL {url} must be an absolute https:// address"
    if parts.scheme == "http" and host not in ("localhost", "127.0.0.1", "::1"):
        return "NGO_KIT_PUBLIC_BASE_URL {url} must use https (http is allowed for localhost only)"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "NGO_KIT_PUBLIC_BASE_URL {url} must not have a query (?) or a fragment (#)"
    if parts.username is not None or parts.password is not None:
        return "NGO_KIT_PUBLIC_BASE_URL {url} must not carry a user name or password"
    return None
