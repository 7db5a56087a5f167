"""Fixtures for relief_hub's page tests: the app over a test kit with every module and both
bridge plugins, and a browser-like client that carries cookies and CSRF tokens."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Under --import-mode=importlib: the repository root (for ``examples.relief_hub``) and this
# folder's parent (for ``relief_hub.hub_support``, named like make typecheck names it).
if str(Path(__file__).resolve().parents[3]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[3]))
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relief_hub.hub_support import Browser, Hub, make_hub

from examples.relief_hub.app import MODULES, PLUGINS
from ngo_kit.testing import KitFactory, MessageCatcher


@pytest.fixture
def hub_factory(kit_factory: KitFactory, message_catcher: MessageCatcher) -> Callable[[], Hub]:
    """``make()`` -> a :class:`Hub`: the app over a fresh kit with the two demo organisations'
    bare bones (``rainbow`` and ``riverside``), people and catalogue."""

    def make() -> Hub:
        kit = kit_factory(modules=list(MODULES), plugins=list(PLUGINS))
        return make_hub(kit, message_catcher)

    return make


@pytest.fixture
def hub(hub_factory: Callable[[], Hub]) -> Hub:
    """The app with ``rainbow`` and ``riverside``, staff and an approved volunteer in each."""
    return hub_factory()


@pytest.fixture
def browser(hub: Hub) -> Browser:
    """A signed-out browser on the app."""
    return hub.browser()
