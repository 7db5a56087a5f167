"""Fixtures for the registration module's tests: a kit with only this module enabled."""

from __future__ import annotations

import uuid

import pytest

from ngo_kit import SYSTEM, Kit
from ngo_kit.modules.registration.schemas import UserRead
from ngo_kit.modules.registration.testing import PASSWORD, KitWithAna, Register
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory


@pytest.fixture
def rkit(kit_factory: KitFactory) -> Kit:
    """A kit with the registration module only."""
    return kit_factory(modules=["registration"])


@pytest.fixture
def rorg(rkit: Kit) -> OrgRead:
    """An open organisation whose national phone numbers are Chinese."""
    return rkit.create_organisation("rainbow", "Rainbow", settings={"phone_region": "CN"})


@pytest.fixture
def rother(rkit: Kit) -> OrgRead:
    """A second organisation for isolation tests."""
    return rkit.create_organisation("sunshine", "Sunshine", settings={"phone_region": "CN"})


@pytest.fixture
def admin(rkit: Kit, rorg: OrgRead) -> uuid.UUID:
    """An account that is an admin of ``rorg``."""
    with rkit.begin(org=rorg, actor=SYSTEM) as tx:
        user: UserRead = tx.registration.register(
            email="admin@example.org", password=PASSWORD, display_name="Admin"
        )
        tx.registration.set_role(user.id, "admin")
    return user.id


@pytest.fixture
def register(rkit: Kit, rorg: OrgRead) -> Register:
    """``register(email=..., **fields)`` -> the new account's id, registered anonymously in rorg;
    then the outbox worker delivers the messages the sign-up left to it (verification)."""

    def make(org: OrgRead | None = None, **fields: object) -> uuid.UUID:
        fields.setdefault("password", PASSWORD)
        fields.setdefault("display_name", "Someone")
        with rkit.begin(org=org or rorg) as tx:
            user: UserRead = tx.registration.register(**fields)
        rkit.outbox.work()
        return user.id

    return make


@pytest.fixture
def explicit_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration kits first used after this fixture answer a sign-up with a taken email or
    phone with ``AlreadyExists`` for everyone (``prevent_enumeration`` off); list it before
    ``rkit``."""
    monkeypatch.setenv("NGO_KIT_REGISTRATION_PREVENT_ENUMERATION", "false")


@pytest.fixture
def kit_with_ana(kit_factory: KitFactory, monkeypatch: pytest.MonkeyPatch) -> KitWithAna:
    """``make(**settings)``: a registration kit built with ``NGO_KIT_REGISTRATION_<NAME>``
    settings, its organisation ``rainbow``, and Ana (ana@example.org) registered there."""

    def make(**settings: str) -> tuple[Kit, OrgRead, UserRead]:
        for name, value in settings.items():
            monkeypatch.setenv(f"NGO_KIT_REGISTRATION_{name}", value)
        kit = kit_factory(modules=["registration"])
        org = kit.create_organisation("rainbow", "Rainbow")
        with kit.begin(org=org) as tx:
            ana: UserRead = tx.registration.register(
                email="ana@example.org", password=PASSWORD, display_name="Ana"
            )
        kit.outbox.work()  # the verification link is left to the worker
        return kit, org, ana

    return make
