"""Fixtures for the points tests: a kit with only the points module enabled."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ngo_kit import SYSTEM, Kit
from ngo_kit.context import Context
from ngo_kit.tenancy import OrgRead

# Helpers live beside the tests (points_helpers, registration_stand_in); with
# --import-mode=importlib the folder is not on sys.path by itself.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def pkit(kit_factory: Callable[..., Kit]) -> Kit:
    """A kit with the points module alone (no registration module)."""
    return kit_factory(modules=["points"])


@pytest.fixture
def porg(pkit: Kit) -> OrgRead:
    """An organisation in ``pkit``."""
    return pkit.create_organisation("points-org", "Points Org")


@pytest.fixture
def sys_tx(pkit: Kit, porg: OrgRead) -> Iterator[Context]:
    """A committed-at-the-end transaction in ``porg`` as the system actor."""
    with pkit.begin(org=porg, actor=SYSTEM) as tx:
        yield tx
