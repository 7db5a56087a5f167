"""Password hashing (argon2id via passlib's ``CryptContext``), the password rules, and settings.

Settings come from ``NGO_KIT_REGISTRATION_*`` environment variables, read once per kit:

* ``ARGON2_MEMORY_KIB`` (19456 = 19 MiB), ``ARGON2_TIME_COST`` (2), ``ARGON2_PARALLELISM`` (1):
  OWASP's minimum. Below it the kit refuses to hash in ``production``. The test suite sets a
  cheap profile (1 MiB, t=1) to stay fast; timing and rehash tests use the real one.
* throttling (sign-in failures, codes and links sent) and lifetimes (see
  ``RegistrationSettings``).
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
import weakref
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pydantic
from passlib.context import CryptContext
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ngo_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"
OWASP_MEMORY_KIB, OWASP_TIME_COST, OWASP_PARALLELISM = 19456, 2, 1
MIN_LENGTH, MAX_LENGTH = 8, 128


#: The kinds of emailed links an app may give a page of its own (``link_templates``).
LINK_KINDS = frozenset({"verify_email", "reset_password", "change_email", "invitation"})


class RegistrationSettings(BaseSettings):
    """The registration module's settings (environment prefix ``NGO_KIT_REGISTRATION_``)."""

    model_config = SettingsConfigDict(env_prefix="NGO_KIT_REGISTRATION_", extra="ignore")

    argon2_memory_kib: int = Field(default=OWASP_MEMORY_KIB, ge=8)
    argon2_time_cost: int = Field(default=OWASP_TIME_COST, ge=1)
    argon2_parallelism: int = Field(default=OWASP_PARALLELISM, ge=1)
    #: failures of one account identifier within the window before it is locked
    account_failures: int = Field(default=5, ge=1)
    #: failures from one client key (an IP address, say) within the window before it is locked
    client_failures: int = Field(default=20, ge=1)
    throttle_window_seconds: int = Field(default=900, ge=1)
    lockout_seconds: int = Field(default=900, ge=1)
    #: codes and links one recipient (an address or number typed in) or one signed-in account
    #: may be sent within ``send_window_seconds``
    send_limit: int = Field(default=5, ge=1)
    #: codes and links one client key may ask for within ``send_window_seconds``
    client_send_limit: int = Field(default=20, ge=1)
    send_window_seconds: int = Field(default=3600, ge=1)
    session_days: int = Field(default=30, ge=1)
    #: a session not used for this many hours ends, however long it had left (0: sessions end
    #: only after ``session_days``)
    session_idle_hours: int = Field(default=168, ge=0)
    code_minutes: int = Field(default=10, ge=1)
    code_attempts: int = Field(default=5, ge=1)
    reset_minutes: int = Field(default=30, ge=1)
    verify_email_hours: int = Field(default=72, ge=1)
    invitation_days: int = Field(default=7, ge=1)
    #: a sign-up with an email or phone an account has already answers as a new sign-up would
    #: and tells the account's holder instead of the caller (``AlreadyExists`` only for the
    #: system actor and holders of ``members.view``); off: everyone gets ``AlreadyExists``
    prevent_enumeration: bool = True
    #: age below which a guardian must consent (PIPL: 14)
    guardian_age: int = Field(default=14, ge=0)
    #: the app's page for each emailed link, by kind (``verify_email``, ``reset_password``,
    #: ``change_email``, ``invitation``), e.g. ``https://app.example.org/o/{org}/verify-email?
    #: token={token}``; ``{token}`` is required, ``{org}`` is the organisation's slug. A kind
    #: without a template sends the bare token, for apps that let people paste it.
    link_templates: dict[str, str] = Field(default_factory=dict)

    @field_validator("link_templates")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, template in value.items():
            if kind not in LINK_KINDS:
                raise ValueError(f"unknown link kind {kind!r}: use one of {sorted(LINK_KINDS)}")
            if "{token}" not in template:
                raise ValueError(f"the {kind} link template has no {{token}}")
            try:
                template.format(token="t", org="o")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"the {kind} link template takes only {{token}} and {{org}}"
                ) from exc
        return value

    def link(self, kind: str, token: str, org: str | None) -> str:
        """The link for ``token`` of ``kind``, or the bare token when no template is set."""
        template = self.link_templates.get(kind)
        if template is None:
            return token
        return template.format(token=quote(token, safe=""), org=quote(org or "", safe=""))

    @property
    def meets_owasp(self) -> bool:
        """True when the argon2 parameters are at least OWASP's minimum."""
        return (
            self.argon2_memory_kib >= OWASP_MEMORY_KIB
            and self.argon2_time_cost >= OWASP_TIME_COST
            and self.argon2_parallelism >= OWASP_PARALLELISM
        )


class Passwords:
    """The hasher: argon2id for new hashes; bcrypt and PBKDF2 hashes verify and are rehashed."""

    def __init__(self, settings: RegistrationSettings) -> None:
        self.context = CryptContext(
            schemes=["argon2", "bcrypt", "pbkdf2_sha256"],
            deprecated=["bcrypt", "pbkdf2_sha256"],
            argon2__type="ID",
            argon2__memory_cost=settings.argon2_memory_kib,
            argon2__time_cost=settings.argon2_time_cost,
            argon2__parallelism=settings.argon2_parallelism,
        )

    @functools.cached_property
    def dummy_hash(self) -> str:
        """What an unknown account is checked against, so it costs what a real check costs.

        Made on first use, not when the kit is built: ``ngo-kit`` commands and apps that never
        sign anyone in do not pay for an argon2id hash at start-up.
        """
        return str(self.context.hash("ngo-kit dummy password for unknown accounts"))

    def hash(self, password: str) -> str:
        """An argon2id hash of the (normalised) password."""
        return str(self.context.hash(password))

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """``(matches, new_hash)``; ``new_hash`` is set when the stored hash needs upgrading.

        With no stored hash the dummy hash is checked, so the time taken is the same.
        """
        if stored is None:
            self.context.verify(password, self.dummy_hash)
            return False, None
        try:
            ok, new_hash = self.context.verify_and_update(password, stored)
        except (ValueError, TypeError):
            return False, None
        return bool(ok), new_hash


_SETTINGS: weakref.WeakKeyDictionary[Kit, tuple[RegistrationSettings, Passwords]] = (
    weakref.WeakKeyDictionary()
)


def for_kit(kit: Kit) -> tuple[RegistrationSettings, Passwords]:
    """The kit's registration settings and hasher, built on first use.

    Raises ``ConfigurationError`` ``registration.E001`` in production when the argon2 parameters
    are below OWASP's minimum, ``registration.E003`` when a setting is malformed.
    """
    found = _SETTINGS.get(kit)
    if found is None:
        try:
            settings = RegistrationSettings()
        except pydantic.ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            raise ConfigurationError(
                "registration.E003",
                "NGO_KIT_REGISTRATION_{setting}: {error}",
                setting=str(problem["loc"][0]).upper() if problem["loc"] else "",
                error=problem["msg"],
            ) from None
        if kit.settings.environment == "production" and not settings.meets_owasp:
            raise ConfigurationError(
                "registration.E001",
                "argon2 parameters are below OWASP's minimum (m=19 MiB, t=2, p=1) in production",
            )
        found = (settings, Passwords(settings))
        _SETTINGS[kit] = found
    return found


def normalise_password(password: str) -> str:
    """NFKC-normalise (NIST 800-63B), so one password typed on two keyboards is one password."""
    return unicodedata.normalize("NFKC", password)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case)."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def is_common(password: str) -> bool:
    """True when the password (any case) is on the common-password list."""
    return password.lower() in common_passwords()
