"""Core tests run against a kit with no optional modules, so they test the core alone."""

from __future__ import annotations

import pytest

from ngo_kit import Kit
from ngo_kit.testing import KitFactory


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    """A kit with core only."""
    return kit_factory(modules=[])
