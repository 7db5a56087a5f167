"""``ngo-kit new-plugin`` makes a package that installs, is found, and passes its own tests.

The package is generated once for the module, pip-installed into a folder of its own (a
site-packages stand-in, as in tests/core/test_entry_points.py) and its tests run in a
subprocess with that folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ngo_kit.cli import main


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ngo-kit new-plugin food-bank --directory <tmp>``, through the real CLI entry point."""
    folder = tmp_path_factory.mktemp("plugins")
    try:
        main(["--no-autoload", "new-plugin", "food-bank", "--directory", str(folder)])
    except SystemExit as exc:  # click's standalone_mode=False returns; errors exit
        assert exc.code in (0, None)
    return folder / "ngo-kit-food-bank"


@pytest.fixture(scope="module")
def installed(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(generated),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path_factory.mktemp("build"),
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return target


def test_the_package_has_the_plugin_layout(generated: Path) -> None:
    package = generated / "src" / "ngo_kit_food_bank"
    for name in ("__init__.py", "models.py", "schemas.py", "service.py", "hookspecs.py"):
        assert (package / name).is_file(), name
    assert (generated / "README.md").is_file()
    assert (generated / "tests" / "test_food_bank.py").is_file()
    pyproject = (generated / "pyproject.toml").read_text()
    assert 'name = "ngo-kit-food-bank"' in pyproject
    assert '[project.entry-points.ngo_kit]\nfood_bank = "ngo_kit_food_bank"' in pyproject
    [revision] = (package / "migrations" / "versions").glob("*_food_bank_tables.py")
    text = revision.read_text()
    assert "branch_labels: str | Sequence[str] | None = ('food_bank',)" in text
    assert "op.create_table('food_bank_note'" in text
    assert "core_audit" not in text


def test_the_installed_package_carries_its_entry_point_and_migration(installed: Path) -> None:
    [dist_info] = installed.glob("ngo_kit_food_bank-0.1.0.dist-info")
    assert (
        "[ngo_kit]\nfood_bank = ngo_kit_food_bank" in (dist_info / "entry_points.txt").read_text()
    )
    assert list((installed / "ngo_kit_food_bank" / "migrations" / "versions").glob("*.py"))


def test_the_generated_tests_pass_as_generated(generated: Path, installed: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NGO_KIT_")}
    if os.environ.get("NGO_KIT_TEST_DATABASE_URL"):  # run them on the suite's database too
        env["NGO_KIT_TEST_DATABASE_URL"] = os.environ["NGO_KIT_TEST_DATABASE_URL"]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(installed), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests"],
        cwd=generated,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "6 passed" in result.stdout
