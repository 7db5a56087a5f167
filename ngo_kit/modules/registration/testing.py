"""pytest fixtures of the registration module (loaded by ``ngo_kit.testing``).

Test runs hash passwords with a cheap argon2 profile (1 MiB, t=1) so suites stay fast, unless
``NGO_KIT_REGISTRATION_ARGON2_*`` is set already. Tests that measure real costs set the OWASP
values with ``monkeypatch.setenv`` before building their kit (settings are read per kit).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from ngo_kit.testing import MessageCatcher

if TYPE_CHECKING:
    from ngo_kit.kit import Kit
    from ngo_kit.modules.registration.schemas import UserRead
    from ngo_kit.tenancy import OrgRead

#: a password that passes the rules, for tests
PASSWORD = "correct horse battery"

#: ``register(org=None, **fields) -> account id`` (see the registration tests' conftest)
Register = Callable[..., uuid.UUID]

#: ``kit_with_ana(**settings) -> (kit, organisation, Ana's account)`` (see the registration
#: tests' conftest)
KitWithAna = Callable[..., "tuple[Kit, OrgRead, UserRead]"]

CHEAP_PROFILE = {
    "NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB": "1024",
    "NGO_KIT_REGISTRATION_ARGON2_TIME_COST": "1",
}
OWASP_PROFILE = {
    "NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB": "19456",
    "NGO_KIT_REGISTRATION_ARGON2_TIME_COST": "2",
    "NGO_KIT_REGISTRATION_ARGON2_PARALLELISM": "1",
}


def pytest_configure(config: pytest.Config) -> None:
    """Use the cheap hashing profile for the test session (never outside tests)."""
    for name, value in CHEAP_PROFILE.items():
        os.environ.setdefault(name, value)


@pytest.fixture
def owasp_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kits built after this fixture hash with the production (OWASP) argon2 parameters."""
    for name, value in OWASP_PROFILE.items():
        monkeypatch.setenv(name, value)


def last_data(catcher: MessageCatcher, recipient: str, key: str) -> str:
    """The ``data[key]`` (a token or code) of the newest message delivered to ``recipient``."""
    found = [m for m in catcher.to(recipient) if key in m.data]
    assert found, f"no message with {key!r} was delivered to {recipient}"
    return str(found[-1].data[key])
