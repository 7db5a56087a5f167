"""Core tests run against a kit with no optional modules, so they test the core alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ngo_kit import Kit
from ngo_kit.testing import KitFactory

# helpers next to the tests (chain_forgery): with --import-mode=importlib the folder is not on
# sys.path by itself.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def kit(kit_factory: KitFactory) -> Kit:
    """A kit with core only."""
    return kit_factory(modules=[])
