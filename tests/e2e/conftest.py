"""Fixtures for the browser tests: relief_hub served by a child process on a fresh database, and
Debian's chromium driven through Playwright's sync API (helpers in ``e2e_support``).

Without chromium the browser tests skip locally and fail under CI (``CI=true``), where
``.ci/run`` installs it. Each xdist worker serves its own relief_hub and runs its own browser.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ngo_kit.testing import DatabaseProvider

# Under --import-mode=importlib the folder is not on sys.path by itself.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from e2e_support import (
    CHROMIUM_ARGS,
    LiveServer,
    Tab,
    chromium_executable,
    missing_chromium,
    screenshot_prefix,
    start_relief_hub,
)
from playwright.sync_api import Browser, BrowserContext, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium for the module's tests (skips locally, fails in CI, without it)."""
    path = chromium_executable()
    why = missing_chromium(path)
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the browser tests and cannot: {why}", pytrace=False)
        pytest.skip(why)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=list(CHROMIUM_ARGS)
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def relief_hub(ngo_kit_databases: DatabaseProvider) -> Iterator[LiveServer]:
    """relief_hub served on 127.0.0.1 over a database of its own (SQLite file, PostgreSQL
    schema or MariaDB database, after ``NGO_KIT_TEST_DATABASE_URL``); killed at teardown."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        # Sign-ups hash passwords; the OWASP parameters cost ~90 ms each for nothing here.
        "NGO_KIT_REGISTRATION_ARGON2_MEMORY_KIB": "1024",
        "NGO_KIT_REGISTRATION_ARGON2_TIME_COST": "1",
    }
    env.pop("NGO_KIT_DATABASE_URL", None)
    server = start_relief_hub(ngo_kit_databases.empty_url(), env=env)
    try:
        yield server
    finally:
        server.stop()


OpenTab = Callable[..., Tab]


@pytest.fixture
def open_tab(
    browser: Browser, relief_hub: LiveServer, request: pytest.FixtureRequest
) -> Iterator[OpenTab]:
    """``open_tab(locale="en-GB")`` -> a :class:`Tab` in a browser context of its own (its
    own cookies: one person signed in), closed when the test ends."""
    contexts: list[BrowserContext] = []

    def make(locale: str = "en-GB") -> Tab:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return Tab(context.new_page(), relief_hub.url, screenshot_prefix(request.node.name))

    yield make
    for context in contexts:
        context.close()
