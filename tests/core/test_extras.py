"""Install what you use: each module with heavy packages of its own has an extra, and a kit
that enables it without them refuses to start, naming the ``pip install`` line."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from ngo_kit import ConfigurationError, Kit
from ngo_kit.testing import settings_for_tests

HEAVY = ("reportlab", "pypinyin", "openpyxl", "segno")


def _kit(url: str, modules: list[str] | None) -> Kit:
    return Kit(settings=settings_for_tests(url), modules=modules, autoload=False)


def test_a_core_install_does_not_pull_in_the_modules_heavy_packages() -> None:
    requirements = metadata.requires("ngo-kit") or []
    core = [r for r in requirements if "extra ==" not in r]
    assert not [r for r in core if r.split(">")[0].split("=")[0].strip().lower() in HEAVY]
    for extra, needs in (("volunteer", HEAVY), ("inventory", ("openpyxl",))):
        listed = [r for r in requirements if f'extra == "{extra}"' in r]
        for package in needs:
            assert any(r.lower().startswith(package) for r in listed), (extra, package)


@pytest.mark.parametrize(
    ("module", "blocked"),
    [("volunteer", "reportlab"), ("volunteer", "pypinyin"), ("inventory", "openpyxl")],
)
def test_a_module_enabled_without_its_packages_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str, module: str, blocked: str
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)  # how Python marks a package as absent
    with pytest.raises(ConfigurationError) as info:
        _kit(empty_database_url, ["registration", module])
    error = info.value
    assert error.check == "core.E040"
    assert error.message_in("en") == (
        f"[core.E040] module '{module}' needs packages that are not installed ({blocked}): "
        f"pip install 'ngo-kit[{module}]'"
    )
    assert f"pip install 'ngo-kit[{module}]'" in error.message_in("zh_CN")
    assert "尚未安装" in error.message_in("zh_CN")


def test_every_module_means_every_module_whose_packages_are_installed(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # neither extra is installed
    kit = _kit(empty_database_url, None)
    try:
        assert sorted(kit.modules) == ["points", "registration"]
    finally:
        kit.dispose()


def test_a_module_with_its_packages_starts(empty_database_url: str) -> None:
    kit = _kit(empty_database_url, ["registration", "volunteer", "inventory"])
    kit.dispose()
