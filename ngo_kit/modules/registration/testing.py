"""Test helpers of the registration module.

Test runs hash passwords with a cheap argon2 profile (1 MiB, t=1) so suites stay fast, unless
``NGO_KIT_REGISTRATION_ARGON2_*`` is set already (ngo-kit's pytest plugin, ``ngo_kit.pytest_plugin``, sets it). Tests that
measure real costs use the ``owasp_hashing`` fixture, or set the OWASP values with
``monkeypatch.setenv`` before building their kit (settings are read per kit).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ngo_kit.kit import Kit
    from ngo_kit.modules.registration.schemas import UserRead
    from ngo_kit.tenancy import OrgRead
    from ngo_kit.testing import MessageCatcher

#: a password that passes the rules, for tests
PASSWORD = "correct horse battery"

#: ``register(org=None, **fields) -> account id`` (see the registration tests' conftest)
Register = Callable[..., uuid.UUID]

#: ``kit_with_ana(**settings) -> (kit, organisation, Ana's account)`` (see the registration
#: tests' conftest)
KitWithAna = Callable[..., "tuple[Kit, OrgRead, UserRead]"]


def last_data(catcher: MessageCatcher, recipient: str, key: str) -> str:
    """The ``data[key]`` (a token or code) of the newest message delivered to ``recipient``."""
    found = [m for m in catcher.to(recipient) if key in m.data]
    assert found, f"no message with {key!r} was delivered to {recipient}"
    return str(found[-1].data[key])
