"""A separately installed package is found through the ``ngo_kit`` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "sample_plugin"


@pytest.fixture(scope="module")
def installed_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the sample plugin into a folder of its own (a site-packages stand-in)."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
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
            str(SAMPLE),
        ],
        check=True,
        cwd=build,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert list(target.glob("ngo_kit_sample-1.2.3.dist-info"))
    return target


def run_cli(site: Path, *args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "NGO_KIT_DATABASE_URL": f"sqlite:///{db}"}
    env.pop("NGO_KIT_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-m", "ngo_kit", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_installed_plugin_is_listed_with_its_version_and_hooks(
    installed_sample: Path, tmp_path: Path
) -> None:
    result = run_cli(installed_sample, "plugins", db=tmp_path / "a.db")
    assert result.returncode == 0, result.stderr
    assert "sample  [ngo-kit-sample 1.2.3]" in result.stdout
    assert "ngo_kit_register_commands" in result.stdout
    assert "ngo_kit_register_permissions" in result.stdout


def test_installed_plugins_hooks_are_called(installed_sample: Path, tmp_path: Path) -> None:
    result = run_cli(installed_sample, "sample-hello", db=tmp_path / "b.db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from ngo-kit-sample"
    code = "from ngo_kit import Kit; k = Kit(modules=[]); print('sample.greet' in k.permissions)"
    env = {
        **os.environ,
        "PYTHONPATH": str(installed_sample),
        "NGO_KIT_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "True"


def test_with_autoload_off_the_installed_plugin_is_not_loaded(
    installed_sample: Path, tmp_path: Path
) -> None:
    listed = run_cli(installed_sample, "--no-autoload", "plugins", db=tmp_path / "d.db")
    assert listed.returncode == 0, listed.stderr
    assert "sample" not in listed.stdout.split()
    refused = run_cli(installed_sample, "--no-autoload", "sample-hello", db=tmp_path / "e.db")
    assert refused.returncode != 0
    env_off = {
        **os.environ,
        "PYTHONPATH": str(installed_sample),
        "NGO_KIT_DISABLE_PLUGIN_AUTOLOAD": "1",
        "NGO_KIT_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}",
    }
    code = "from ngo_kit import Kit; print('sample.greet' in Kit(modules=[]).permissions)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_off, check=True
    )
    assert out.stdout.strip() == "False"
