"""Meta-test: every hookspec is documented in docs/ and exercised by some test.

The hookspecs are core's (``ngo_kit.hookspecs``) plus those of every built-in module, found the
way the kit finds them: a Kit with ``autoload=False`` and every built-in module enabled, reading
each ``Module.hookspecs`` and every specified hook on the kit's plugin manager. A hook counts as
documented when its name appears on some ``docs/**/*.md`` page, and as tested when its name
appears in some file under ``tests/`` other than this one.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from ngo_kit import hookspecs as core_hookspecs
from ngo_kit.kit import Kit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
HOOK_PREFIX = "ngo_kit_"
SPEC_MARKER = f"{core_hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets


def specs_in(namespace: object) -> list[str]:
    """Names of the hook specifications defined in a hookspecs module (or class)."""
    return sorted(
        name
        for name in dir(namespace)
        if name.startswith(HOOK_PREFIX) and hasattr(getattr(namespace, name), SPEC_MARKER)
    )


def all_hookspecs(kit: Kit) -> dict[str, str]:
    """Every hookspec the kit knows, mapped to where it is specified (``core`` or a module)."""
    found = dict.fromkeys(specs_in(core_hookspecs), "core")
    for module in kit.modules.values():
        if module.hookspecs is not None:
            for name in specs_in(module.hookspecs):
                found.setdefault(name, f"module {module.name}")
    for name, caller in vars(kit.pm.hook).items():
        specified = isinstance(caller, pluggy.HookCaller) and caller.spec is not None
        if name.startswith(HOOK_PREFIX) and specified:
            found.setdefault(name, "the plugin manager")
    return found


def _texts(files: list[Path]) -> str:
    parts = []
    for path in files:
        try:
            parts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue  # binary files say nothing about hooks
    return "\n".join(parts)


def docs_text() -> str:
    """Every docs page, concatenated."""
    return _texts(sorted(DOCS.rglob("*.md")))


def suite_text() -> str:
    """Every file under tests/ except this meta-test (and caches), concatenated."""
    me = Path(__file__).resolve()
    files = [
        p
        for p in sorted(TESTS.rglob("*"))
        if p.is_file() and p.resolve() != me and "__pycache__" not in p.parts
    ]
    return _texts(files)


def mentioned(name: str, text: str) -> bool:
    """True when ``name`` appears as a whole word (``ngo_kit_x`` is not ``ngo_kit_x_y``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def _report(missing: dict[str, str], where: str) -> str:
    lines = [f"{name} ({origin})" for name, origin in sorted(missing.items())]
    return f"hookspecs not mentioned {where}:\n  " + "\n  ".join(lines)


@pytest.fixture
def hookspecs(kit_factory: Callable[..., Kit]) -> dict[str, str]:
    """Core's and every built-in module's hookspecs, from a kit that autoloads nothing."""
    kit = kit_factory(upgrade=False)
    return all_hookspecs(kit)


def test_hookspecs_are_found(hookspecs: dict[str, str]) -> None:
    assert set(specs_in(core_hookspecs)) <= set(hookspecs)
    assert "ngo_kit_org_created" in hookspecs
    assert "ngo_kit_deliver_message" in hookspecs


def test_every_hookspec_is_documented(hookspecs: dict[str, str]) -> None:
    text = docs_text()
    missing = {n: o for n, o in hookspecs.items() if not mentioned(n, text)}
    assert not missing, _report(missing, "on any docs/**/*.md page")


def test_every_hookspec_is_exercised_by_a_test(hookspecs: dict[str, str]) -> None:
    text = suite_text()
    missing = {n: o for n, o in hookspecs.items() if not mentioned(n, text)}
    assert not missing, _report(missing, "in any file under tests/ (besides this meta-test)")


def test_the_hook_reference_has_a_section_for_every_core_hookspec() -> None:
    reference = (DOCS / "plugins.md").read_text(encoding="utf-8")
    missing = {n: "core" for n in specs_in(core_hookspecs) if f"### `{n}`" not in reference}
    assert not missing, _report(missing, "as a '### `name`' section of docs/plugins.md")


def test_specs_are_told_apart_from_other_names() -> None:
    namespace = types.SimpleNamespace(
        ngo_kit_real=core_hookspecs.ngo_kit_org_created, ngo_kit_plain=lambda: None, other=1
    )
    assert specs_in(namespace) == ["ngo_kit_real"]
    assert mentioned("ngo_kit_x", "calls `ngo_kit_x(tx)`")
    assert not mentioned("ngo_kit_x", "ngo_kit_x_y and ngo_kit_xy")
