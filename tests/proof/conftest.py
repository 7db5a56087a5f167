"""The generated matrices run on one kit with every installed module, first-party plugins
included, and two seeded organisations shared by the session (every call is rolled back, and
a snapshot of every table proves it)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests import their helpers by module name, under any --import-mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from proof_matrix import Proof, build, discover, ids_by_organisation, installed_plugins, tables
from proof_world import seed

from ngo_kit import Kit
from ngo_kit.testing import DatabaseProvider, MessageCatcher, settings_for_tests


@pytest.fixture(scope="session")
def proof(ngo_kit_databases: DatabaseProvider) -> Iterator[Proof]:
    """Organisations ``proof-a`` and ``proof-b``, each with one of everything, on a kit with
    every installed module."""
    plugins = installed_plugins()
    key = ("proof-matrices", tuple(sorted(type(p).__name__ + repr(p) for p in plugins)))

    def migrate(url: str) -> None:
        builder = Kit(settings=settings_for_tests(url), plugins=plugins, autoload=False)
        builder.upgrade()
        builder.dispose()

    url = ngo_kit_databases.acquire(key, migrate)
    messages = MessageCatcher()
    kit = Kit(settings=settings_for_tests(url), plugins=[*plugins, messages], autoload=False)
    a, b = seed(kit, "a", messages), seed(kit, "b", messages)
    all_tables = tables(kit)
    with kit.engine.connect() as connection:  # every id in each side's rows, none shared
        held = ids_by_organisation(connection, all_tables)
    mine, theirs = held.get(str(a.org.id), set()), held.get(str(b.org.id), set())
    a.ids |= mine - theirs
    b.ids |= theirs - mine
    plans = {m.id: build(m) for m in discover(kit)}
    world = Proof(kit, a, b, all_tables, {}, plans)
    world.baseline = world.snapshot()
    yield world
    kit.dispose()
    ngo_kit_databases.release(key, url)
