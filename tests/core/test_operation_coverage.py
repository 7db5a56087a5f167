"""Every public method of every first-party module and plugin service is a declared operation,
reached over HTTP or carrying a written reason why not (issue 17, "complete coverage")."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ngo_kit.operations import operations_of, public_methods
from ngo_kit.plugins import Module, Registrar

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("registration", "points", "inventory", "volunteer")


def _plugin_modules() -> list[Module]:
    """The modules with a service that the first-party plugins (``plugins/*``) register."""
    found: list[Module] = []
    for project in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        entry_points = tomllib.loads(project.read_text())["project"]["entry-points"]["ngo_kit"]
        for target in entry_points.values():
            module_name, _, attribute = target.partition(":")
            plugin: Any = importlib.import_module(module_name)
            if attribute:
                plugin = getattr(plugin, attribute)
            register: Registrar[Module] = Registrar("module", Module, lambda m: m.name)
            if hasattr(plugin, "ngo_kit_register_modules"):
                plugin.ngo_kit_register_modules(register=register)
            found += [m for m in register.values() if isinstance(m.service, type)]
    return found


def _cases() -> list[Any]:
    built_in = [
        pytest.param(importlib.import_module(f"ngo_kit.modules.{name}").MODULE, id=name)
        for name in MODULES
    ]
    return built_in + [pytest.param(m, id=m.name) for m in _plugin_modules()]


def test_the_first_party_plugins_with_a_service_are_all_checked() -> None:
    assert {m.name for m in _plugin_modules()} >= {"webhooks", "rewards_stock", "hours_points"}


@pytest.mark.parametrize("module", _cases())
def test_every_public_method_is_a_declared_operation(module: Module) -> None:
    assert isinstance(module.service, type)
    ops = operations_of(module.service, module.name)
    declared = {op.attribute for op in ops}
    missing = [m for m in public_methods(module.service) if m not in declared]
    assert not missing, (
        f"{module.name}: public methods without @operation(...): {', '.join(missing)} "
        "(declare each with its HTTP route, or not_http='why')"
    )
    for op in ops:
        assert op.over_http or (op.not_http or "").strip(), op.qualified_name
