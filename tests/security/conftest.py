"""Fixtures for the security review: an app over a kit with every built-in module and two
organisations (helpers in ``security_support``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ngo_kit.testing import KitFactory, MessageCatcher
from ngo_kit.web import create_app

# Under --import-mode=importlib the folder is not on sys.path by itself.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from security_support import ORG, OTHER, Site, SiteFactory


@pytest.fixture
def site_factory(kit_factory: KitFactory, message_catcher: MessageCatcher) -> SiteFactory:
    """``make(plugins=(), app_options=None, **settings)`` -> a :class:`Site` over every built-in
    module with the organisations ``rainbow`` and ``sunrise`` (national phone numbers: CN)."""

    def make(
        plugins: tuple[object, ...] = (),
        app_options: dict[str, Any] | None = None,
        **settings: Any,
    ) -> Site:
        kit = kit_factory(plugins=plugins, **settings)
        kit.create_organisation(ORG, "Rainbow Charity", settings={"phone_region": "CN"})
        kit.create_organisation(OTHER, "Sunrise Foundation", settings={"phone_region": "CN"})
        return Site(kit, TestClient(create_app(kit, **(app_options or {}))), message_catcher)

    return make


@pytest.fixture
def site(site_factory: SiteFactory) -> Site:
    """The app over every built-in module, with the organisations ``rainbow`` and ``sunrise``."""
    return site_factory()
