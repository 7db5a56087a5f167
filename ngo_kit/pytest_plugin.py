"""ngo-kit's pytest plugin (entry point ``pytest11``, name ``ngo_kit``): the fixtures.

Installing ngo-kit puts these fixtures in every test suite of the environment, so importing this
module costs next to nothing: it imports neither SQLAlchemy nor the kit. Each fixture imports
what it needs when a test first uses it (as pytest-django defers Django), so a suite that never
touches ngo-kit does not pay for it being installed. The helpers the fixtures use, and that
tests import (``settings_for_tests``, ``run_together``, ``MessageCatcher``, ``KitFactory``...),
live in :mod:`ngo_kit.testing`.

``kit``, ``org``, ``other_org`` and ``tx`` are common words, and a project may have fixtures of
its own by those names: each also exists with the ``ngo_kit_`` prefix, and the ini option
``ngo_kit_generic_fixtures = false`` leaves the short names out, so a test that asks for
``tx`` where the project defines none fails instead of silently getting ngo-kit's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.kit import Kit
    from ngo_kit.outbox import OutboxMessage
    from ngo_kit.tenancy import OrgRead
    from ngo_kit.testing import DatabaseProvider, KitFactory, MessageCatcher

ENV_URL = "NGO_KIT_TEST_DATABASE_URL"
GENERIC_FIXTURES_OPTION = "ngo_kit_generic_fixtures"

#: The registration module's password hashing in test sessions: a cheap argon2 profile (1 MiB,
#: t=1) so suites stay fast, unless ``NGO_KIT_REGISTRATION_ARGON2_*`` is set already.
CHEAP_PROFILE = {
    "NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB": "1024",
    "NGO_KIT_REGISTRATION_ARGON2_TIME_COST": "1",
}
#: The production (OWASP) argon2 parameters, for tests that measure real costs.
OWASP_PROFILE = {
    "NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB": "19456",
    "NGO_KIT_REGISTRATION_ARGON2_TIME_COST": "2",
    "NGO_KIT_REGISTRATION_ARGON2_PARALLELISM": "1",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ini option that leaves out the short fixture names."""
    parser.addini(
        GENERIC_FIXTURES_OPTION,
        "ngo-kit: also offer the fixtures kit, org, other_org and tx by these short names "
        "(false: only as ngo_kit_kit, ngo_kit_org, ngo_kit_other_org, ngo_kit_tx)",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Use the cheap hashing profile for the session (never outside tests); offer the short
    fixture names unless the project's ini turns them off."""
    for name, value in CHEAP_PROFILE.items():
        os.environ.setdefault(name, value)
    if config.getini(GENERIC_FIXTURES_OPTION) and not config.pluginmanager.has_plugin(
        ShortNames.name
    ):
        config.pluginmanager.register(ShortNames(), ShortNames.name)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which database the suite runs on, so CI logs show it."""
    url = os.environ.get(ENV_URL)
    if not url:
        return "ngo-kit test database: sqlite (temporary files)"
    from ngo_kit.kit import normalise_url

    return f"ngo-kit test database: {normalise_url(url).render_as_string(hide_password=True)}"


@pytest.fixture(scope="session")
def ngo_kit_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseProvider]:
    """The session's database provider (reads ``NGO_KIT_TEST_DATABASE_URL``)."""
    from ngo_kit.testing import DatabaseProvider

    provider = DatabaseProvider(
        os.environ.get(ENV_URL) or None, tmp_path_factory.mktemp("ngo_kit_db")
    )
    yield provider
    provider.drop_all()


@pytest.fixture
def empty_database_url(ngo_kit_databases: DatabaseProvider) -> str:
    """A database with no tables, for migration tests."""
    return ngo_kit_databases.empty_url()


@pytest.fixture
def message_catcher() -> MessageCatcher:
    """Every message kits of this test delivered through the outbox."""
    from ngo_kit.testing import MessageCatcher

    return MessageCatcher()


@pytest.fixture
def delivered_messages(message_catcher: MessageCatcher) -> list[OutboxMessage]:
    """The list of messages delivered so far in this test, oldest first."""
    return message_catcher.messages


@pytest.fixture
def kit_factory(
    ngo_kit_databases: DatabaseProvider, message_catcher: MessageCatcher
) -> Iterator[KitFactory]:
    """``make(modules=None, plugins=(), upgrade=True, **settings)`` -> a Kit on an empty database.

    ``modules=None`` enables every built-in module. Installed third-party plugins are never
    autoloaded; pass the test's plugin objects in ``plugins``. Settings overrides are keyword
    arguments (``outbox_max_attempts=2``).
    """
    from ngo_kit.testing import kits_on

    with kits_on(ngo_kit_databases, message_catcher) as make:
        yield make


@pytest.fixture
def owasp_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kits built after this fixture hash with the production (OWASP) argon2 parameters."""
    for name, value in OWASP_PROFILE.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def ngo_kit_kit(kit_factory: KitFactory) -> Kit:
    """A kit with every built-in module, on an empty migrated database (short name: ``kit``)."""
    return kit_factory()


@pytest.fixture
def ngo_kit_org(ngo_kit_kit: Kit) -> OrgRead:
    """An organisation, ``test-org``, created by the system actor (short name: ``org``)."""
    return ngo_kit_kit.create_organisation("test-org", "Test Organisation")


@pytest.fixture
def ngo_kit_other_org(ngo_kit_kit: Kit) -> OrgRead:
    """A second organisation, ``other-org``, for tenancy isolation tests (``other_org``)."""
    return ngo_kit_kit.create_organisation("other-org", "Other Organisation")


@pytest.fixture
def ngo_kit_tx(ngo_kit_kit: Kit, ngo_kit_org: OrgRead) -> Iterator[Context]:
    """A transaction in ``test-org`` as the system actor, committed when the test ends (``tx``)."""
    yield from _transaction(ngo_kit_kit, ngo_kit_org)


def _transaction(kit: Kit, org: OrgRead) -> Iterator[Context]:
    from ngo_kit.tenancy import SYSTEM

    with kit.begin(org=org, actor=SYSTEM) as context:
        yield context


class ShortNames:
    """The fixtures by their short names, registered unless ``ngo_kit_generic_fixtures`` is
    false. They chain through each other, so a test folder that overrides ``kit`` (with
    ``kit_factory(modules=[...])``) gets ``org`` and ``tx`` in that kit."""

    name = "ngo_kit.short_fixture_names"

    @pytest.fixture
    def kit(self, ngo_kit_kit: Kit) -> Kit:
        """A kit with every built-in module, on an empty migrated database."""
        return ngo_kit_kit

    @pytest.fixture
    def org(self, kit: Kit) -> OrgRead:
        """An organisation, ``test-org``, created by the system actor."""
        return kit.create_organisation("test-org", "Test Organisation")

    @pytest.fixture
    def other_org(self, kit: Kit) -> OrgRead:
        """A second organisation, ``other-org``, for tenancy isolation tests."""
        return kit.create_organisation("other-org", "Other Organisation")

    @pytest.fixture
    def tx(self, kit: Kit, org: OrgRead) -> Iterator[Context]:
        """A transaction in ``test-org`` as the system actor, committed when the test ends."""
        yield from _transaction(kit, org)
