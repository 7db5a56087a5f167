"""Meta-tests: the reference pages name everything core has, so they cannot fall behind.

* docs/cli.md names every ``ngo-kit`` command of core and of ngo-kit's own non-module plugins
  (``new-plugin``), and each of their options;
* docs/errors.md names every error class of ``ngo_kit.errors`` with its code, and every
  ``core.E...`` configuration check code that core's source raises;
* docs/architecture.md names every setting (``KitSettings`` field) as its ``NGO_KIT_`` variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from ngo_kit import errors
from ngo_kit.cli import cli
from ngo_kit.plugins import Module, Registrar, collect, load_entry_points, new_plugin_manager
from ngo_kit.settings import KitSettings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CORE = ROOT / "ngo_kit"


def page(name: str) -> str:
    """The text of one docs page."""
    return (DOCS / name).read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "ngo-kit") -> Iterator[tuple[str, click.Command]]:
    """Every command below ``group`` with its full path (``ngo-kit db upgrade``)."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path)


def builtin_plugin_commands() -> click.Group:
    """Commands that ngo-kit's own plugins add, except the modules' (their guides cover those)."""
    pm = new_plugin_manager()
    load_entry_points(pm, autoload=False)
    module_plugins = {
        registered.plugin
        for registered in collect(
            pm, "ngo_kit_register_modules", Registrar("module", Module, lambda m: m.name)
        )
    }
    group = click.Group("ngo-kit")
    for impl in pm.hook.ngo_kit_register_commands.get_hookimpls():
        if impl.plugin_name not in module_plugins:
            impl.function(cli=group)
    return group


def option_names(command: click.Command) -> list[str]:
    """The long option names (or the only name) of a command's options, ``--help`` aside."""
    names: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            longs = [o for o in param.opts if o.startswith("--")] or list(param.opts)
            names.extend(n for n in longs if n != "--help")
    return names


def check_codes_in_core() -> set[str]:
    """Every ``core.E...`` code raised by core's own source (modules excluded)."""
    codes: set[str] = set()
    for path in CORE.rglob("*.py"):
        if "modules" in path.relative_to(CORE).parts:
            continue
        codes.update(re.findall(r"""["'](core\.E\d{3})["']""", path.read_text(encoding="utf-8")))
    return codes


def error_classes() -> list[type[errors.NgoKitError]]:
    """Every error class ``ngo_kit.errors`` defines."""
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.NgoKitError)
        and value.__module__ == errors.__name__
    ]


def test_cli_page_names_every_command_and_option() -> None:
    text = page("cli.md")
    found = [*commands(cli), *commands(builtin_plugin_commands())]
    missing = [path for path, _ in found if f"`{path}" not in text]
    missing += [
        f"{path} {name}"
        for path, command in [("ngo-kit", cli), *found]
        for name in option_names(command)
        if f"`{name}" not in text
    ]
    assert not missing, "docs/cli.md does not name: " + ", ".join(missing)


def test_errors_page_names_every_error_class_with_its_code() -> None:
    text = page("errors.md")
    missing = [
        f"{cls.__name__} ({cls.code})"
        for cls in error_classes()
        if cls.__name__ not in text or cls.code not in text
    ]
    assert not missing, "docs/errors.md does not name: " + ", ".join(missing)


def test_errors_page_lists_every_configuration_check_code() -> None:
    text = page("errors.md")
    codes = check_codes_in_core()
    assert codes, "no core.E codes found: has the source moved?"
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, "docs/errors.md does not list: " + ", ".join(missing)


def test_architecture_page_names_every_setting() -> None:
    text = page("architecture.md")
    missing = [
        f"NGO_KIT_{name.upper()}"
        for name in KitSettings.model_fields
        if f"`{name.upper()}`" not in text and f"NGO_KIT_{name.upper()}" not in text
    ]
    assert not missing, "docs/architecture.md does not name: " + ", ".join(missing)


def test_docs_name_no_check_code_that_core_does_not_raise() -> None:
    raised = check_codes_in_core()
    stale = {
        f"{code} ({path.relative_to(ROOT)})"
        for path in sorted(DOCS.rglob("*.md"))
        for code in re.findall(r"core\.E\d{3}", path.read_text(encoding="utf-8"))
        if code not in raised
    }
    assert not stale, "docs name check codes core no longer raises: " + ", ".join(sorted(stale))
