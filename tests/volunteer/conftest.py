"""Fixtures for the volunteer module's tests: a kit with registration and volunteer enabled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Tests import their helpers by module name, under any --import-mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from volunteer_helpers import World

from ngo_kit import Kit
from ngo_kit.tenancy import OrgRead
from ngo_kit.testing import KitFactory


@pytest.fixture
def vkit(kit_factory: KitFactory) -> Kit:
    """A kit with the volunteer module and the registration module it requires."""
    return kit_factory(modules=["registration", "volunteer"])


@pytest.fixture
def vorg(vkit: Kit) -> OrgRead:
    """An organisation in Shanghai time rounding hours to the nearest quarter hour."""
    return vkit.create_organisation("centre", "Volunteer Centre", timezone="Asia/Shanghai")


@pytest.fixture
def world(vkit: Kit, vorg: OrgRead) -> World:
    """The organisation with skills, an activity and a coordinator (staff)."""
    return World(vkit, vorg)


@pytest.fixture
def other_world(vkit: Kit) -> World:
    """A second organisation, for isolation tests."""
    return World(vkit, vkit.create_organisation("elsewhere", "Elsewhere"))
