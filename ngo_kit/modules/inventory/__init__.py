"""The inventory module (being built: see its issue)."""

from __future__ import annotations

from pathlib import Path

from ngo_kit.hookspecs import hookimpl
from ngo_kit.plugins import Module, Registrar

HERE = Path(__file__).parent

MODULE = Module(
    name="inventory",
    version="0.1.0",
    requires=(),
    migrations=HERE / "migrations" / "versions",
)


@hookimpl
def ngo_kit_register_modules(register: Registrar[Module]) -> None:
    """Provide the inventory module."""
    register(MODULE)
