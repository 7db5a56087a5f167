"""Fixtures for the modules' HTTP API tests: an app over a kit with every built-in module and
two organisations (helpers in ``web_api_support``)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ngo_kit.testing import KitFactory, MessageCatcher
from ngo_kit.web import create_app
from ngo_kit.web.operations import Answered
from ngo_kit.web.testing import assert_declared

# Under --import-mode=importlib the folder is not on sys.path by itself.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from web_api_support import ORG, OTHER, Api

# schemathesis comes with the dev extra; without it the fuzzing module is not collected.
collect_ignore = [] if importlib.util.find_spec("schemathesis") else ["test_fuzz_api.py"]


@pytest.fixture
def api_factory(
    kit_factory: KitFactory, message_catcher: MessageCatcher
) -> Iterator[Callable[..., Api]]:
    """``make(plugins=())`` -> an :class:`Api` over all built-in modules with two organisations.

    After the test, every problem a declared operation answered must be one its declaration
    lists (``errors=(...)``): the test fails otherwise, naming the operation and the error.
    """
    answered: list[Answered] = []

    def make(plugins: tuple[object, ...] = ()) -> Api:
        kit = kit_factory(plugins=plugins)
        kit.create_organisation(ORG, "Rainbow Charity")
        kit.create_organisation(OTHER, "Sunrise Foundation")
        app = create_app(kit)
        app.state.problem_log = answered
        return Api(kit, TestClient(app), message_catcher)

    yield make
    assert_declared(answered)


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """The app over all built-in modules, with the organisations ``rainbow`` and ``sunrise``."""
    return api_factory()
