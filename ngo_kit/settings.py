"""Kit settings, read from keyword arguments, then ``NGO_KIT_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

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
    """

    model_config = SettingsConfigDict(env_prefix="NGO_KIT_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    environment: Literal["development", "test", "production"] = "development"
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr(DEFAULT_SECRET)]
    )
    default_locale: str = "en"
    disable_plugin_autoload: bool = False
    echo_sql: bool = False
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    outbox_dispatch_after_commit: bool = True
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_backoff_seconds: float = Field(default=5.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    pool_size: int = Field(default=5, ge=1)
    pool_pre_ping: bool = False
    pool_recycle_seconds: int = Field(default=1800, ge=-1)
    org_cache_seconds: float = Field(default=5.0, ge=0)
    #: The most points one manual award (``tx.points.award``, each member of ``award_many``)
    #: by a person may give; the system actor is not limited. Earning rules have caps of their own.
    points_manual_award_max: int = Field(default=10_000, ge=1, le=1_000_000_000)

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
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
