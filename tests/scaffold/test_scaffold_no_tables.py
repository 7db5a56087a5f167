"""``ngo-kit new-plugin NAME --no-tables``: a plugin that only reacts to events installs, is
found and passes its own tests; and the next steps install into ngo-kit's own environment."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ngo_kit.cli import main


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``ngo-kit new-plugin town-crier --no-tables``: the folder, and what the command printed."""
    folder = tmp_path_factory.mktemp("plugins")
    capture = pytest.MonkeyPatch()
    out = folder / "out.txt"
    with out.open("w", encoding="utf-8") as fh:
        capture.setattr(sys, "stdout", fh)
        try:
            args = ["new-plugin", "town-crier", "--directory", str(folder), "--no-tables"]
            main(["--no-autoload", *args])
        except SystemExit as exc:
            assert exc.code in (0, None)
        finally:
            capture.undo()
    return folder / "ngo-kit-town-crier", out.read_text(encoding="utf-8")


def test_the_package_has_a_module_and_no_tables(made: tuple[Path, str]) -> None:
    plugin, _ = made
    package = plugin / "src" / "ngo_kit_town_crier"
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "py.typed"]
    assert not list(plugin.rglob("migrations"))
    init = (package / "__init__.py").read_text()
    assert "MODULE = Module(" in init and "models=" not in init and "migrations=" not in init
    assert "migrations/versions" not in (plugin / "pyproject.toml").read_text()


def test_the_next_steps_install_into_ngo_kits_environment(made: tuple[Path, str]) -> None:
    plugin, printed = made
    python = shlex.quote(sys.executable)
    assert f"  {python} -m pip install -e {shlex.quote(str(plugin))}\n" in printed
    assert f"  {python} -m pytest {shlex.quote(str(plugin / 'tests'))}\n" in printed


def test_the_generated_tests_pass_once_installed(
    made: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    plugin, _ = made
    site = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(site), str(plugin)],
        check=True,
        capture_output=True,
        cwd=tmp_path_factory.mktemp("build"),
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NGO_KIT_")}
    if os.environ.get("NGO_KIT_TEST_DATABASE_URL"):
        env["NGO_KIT_TEST_DATABASE_URL"] = os.environ["NGO_KIT_TEST_DATABASE_URL"]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests"],
        cwd=plugin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
