"""ngo-kit's pytest plugin is loaded into every test run of the environment: loading it must cost
next to nothing, and its fixtures must not stand in silently for a project's own."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "pydantic", "ngo_kit.kit", "ngo_kit.testing")


def _entry_point() -> str:
    [found] = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "ngo_kit"]
    return found.value


def test_loading_the_plugin_imports_neither_the_kit_nor_sqlalchemy() -> None:
    module = _entry_point()
    script = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "", f"{module} imported {done.stdout.strip()}"


def _pytest(folder: Path, ini: str, tests: str) -> subprocess.CompletedProcess[str]:
    (folder / "pytest.ini").write_text(ini, encoding="utf-8")
    (folder / "test_project.py").write_text(tests, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:randomly"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


#: a kit_factory that makes stand-ins, so these runs test how the fixtures chain, not a database
STAND_IN = """
import types

import pytest


class StandInKit:
    def create_organisation(self, slug, name):
        return types.SimpleNamespace(slug=slug, name=name, kit=self)


@pytest.fixture
def kit_factory():
    return StandInKit
"""


def test_a_project_can_leave_out_the_short_fixture_names(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path,
        "[pytest]\nngo_kit_generic_fixtures = false\n",
        STAND_IN
        + """
def test_forgot_to_define_its_own_org(org):
    pass


def test_the_prefixed_names_stay(ngo_kit_kit, ngo_kit_org, ngo_kit_other_org):
    assert ngo_kit_org.slug == "test-org" and ngo_kit_org.kit is ngo_kit_kit
    assert ngo_kit_other_org.slug == "other-org"
""",
    )
    assert "fixture 'org' not found" in done.stdout, done.stdout[-2000:]
    assert "1 passed, 1 error" in done.stdout, done.stdout[-2000:]


def test_the_short_names_are_the_prefixed_fixtures_by_default(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path,
        "[pytest]\n",
        STAND_IN
        + """
def test_short_and_prefixed_are_one_kit(kit, ngo_kit_kit, org, other_org):
    assert kit is ngo_kit_kit and org.kit is kit
    assert (org.slug, other_org.slug) == ("test-org", "other-org")
""",
    )
    assert "1 passed" in done.stdout, done.stdout[-2000:]
