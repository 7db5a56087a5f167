"""Suite-wide: tests that prove something about one database run on that database only.

The suite runs three times in CI (SQLite, PostgreSQL, MariaDB). The browser tests prove what a
person sees and does, which does not depend on the database: they run once, on SQLite, the
database of ``make demo``. A test file elsewhere can say the same with
``pytestmark = pytest.mark.only_on("postgresql", reason=...)``. Tests that are not for the
database under test are deselected, not skipped, so the report lists only real skips.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from ngo_kit.pytest_plugin import ENV_URL

#: folders (relative to ``tests/``) whose tests prove one database's behaviour, and which
ONLY_ON = {"e2e": ("sqlite",)}


def backend() -> str:
    """The test database's backend: ``sqlite``, ``postgresql`` or ``mysql`` (MariaDB)."""
    url = os.environ.get(ENV_URL)
    return sa.make_url(url).get_backend_name() if url else "sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_on(*backends, reason=''): run only when the test database is one of these "
        "(sqlite, postgresql, mysql); deselected otherwise",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here, current = os.path.dirname(__file__), backend()
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("only_on")
        wanted: tuple[str, ...] = tuple(marker.args) if marker else ()
        folder = os.path.relpath(str(item.path), here).split(os.sep)[0]
        wanted = wanted or ONLY_ON.get(folder, ())
        (drop if wanted and current not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
