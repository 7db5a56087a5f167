"""Fixtures for the modules' HTTP API tests: an app over a kit with every built-in module and
two organisations (helpers in ``web_api_support``)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ngo_kit.testing import KitFactory, MessageCatcher
from ngo_kit.web import create_app

# Under --import-mode=importlib the folder is not on sys.path by itself.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from web_api_support import ORG, OTHER, Api

# schemathesis comes with the dev extra; without it the fuzzing module is not collected.
collect_ignore = [] if importlib.util.find_spec("schemathesis") else ["test_fuzz_api.py"]


@pytest.fixture
def api_factory(kit_factory: KitFactory, message_catcher: MessageCatcher) -> Callable[..., Api]:
    """``make(plugins=())`` -> an :class:`Api` over all built-in modules with two organisations."""

    def make(plugins: tuple[object, ...] = ()) -> Api:
        kit = kit_factory(plugins=plugins)
        kit.create_organisation(ORG, "Rainbow Charity")
        kit.create_organisation(OTHER, "Sunrise Foundation")
        return Api(kit, TestClient(create_app(kit)), message_catcher)

    return make


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """The app over all built-in modules, with the organisations ``rainbow`` and ``sunrise``."""
    return api_factory()
