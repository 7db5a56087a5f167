"""Generate a plugin package from :mod:`ngo_kit.scaffold.templates`.

``create_plugin("meals", folder)`` writes ``folder/ngo-kit-meals``: distribution
``ngo-kit-meals``, import package ``ngo_kit_meals``, module ``meals`` (tables ``meals_*``),
entry point ``meals``. The first migration is generated from the models by the kit's own
migration machinery, in a separate Python process (so the new models never join this
process's metadata).
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ngo_kit.errors import AlreadyExists, NgoKitError, ValidationFailed
from ngo_kit.scaffold.templates import FILES, FILES_NO_TABLES

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME = 24  # keeps every generated table and constraint name within PostgreSQL's 63
RESERVED = frozenset(
    {"core", "registration", "points", "inventory", "volunteer", "webhooks", "smtp", "web"}
)
_TOKEN = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class Created:
    """What ``create_plugin`` made."""

    path: Path
    distribution: str
    package: str
    module: str
    #: the first migration, or ``None`` for a module without tables
    revision: Path | None


def names(name: str) -> dict[str, str]:
    """The names a plugin called ``name`` gets; ``ValidationFailed`` for a name that cannot work.

    ``name`` is lowercase letters, digits and single hyphens, starting with a letter, at most
    24 characters, not ``ngo-kit-...`` (give the short name) and not a name ngo-kit uses.
    """
    from ngo_kit.context import Context

    if not _NAME.match(name) or len(name) > MAX_NAME:
        raise ValidationFailed(
            "name",
            "invalid_plugin_name",
            "must be 2 to {max} lowercase letters, digits and single hyphens, starting with a "
            "letter (such as 'meals' or 'food-bank'), not {name!r}",
            max=MAX_NAME,
            name=name,
        )
    if name.startswith("ngo-kit"):
        raise ValidationFailed(
            "name",
            "invalid_plugin_name",
            "give the short name: 'meals' makes the package ngo-kit-meals",
        )
    module = name.replace("-", "_")
    taken = set(RESERVED) | {n for n in dir(Context) if not n.startswith("_")}
    if module in taken or keyword.iskeyword(module) or len(module) < 2:
        raise ValidationFailed(
            "name",
            "reserved_plugin_name",
            "{name!r} is a name ngo-kit uses already; choose another",
            name=name,
        )
    words = name.split("-")
    return {
        "name": name,
        "dist": f"ngo-kit-{name}",
        "package": f"ngo_kit_{module}",
        "module": module,
        "Class": "".join(w.capitalize() for w in words),
        "title": " ".join(words).capitalize(),
    }


def render(text: str, values: dict[str, str]) -> str:
    """Fill ``{{token}}`` placeholders."""
    return _TOKEN.sub(lambda m: values[m.group(1)], text)


def create_plugin(name: str, directory: Path | str = ".", *, tables: bool = True) -> Created:
    """Write the plugin package ``ngo-kit-<name>`` into ``directory`` and its first migration.

    With ``tables=False`` the module has no models and no migrations: a plugin that only
    reacts to events. Raises ``ValidationFailed`` for a bad name, ``AlreadyExists`` when the folder exists,
    ``NgoKitError`` when the first migration cannot be generated (the folder is removed).
    """
    values = names(name)
    target = Path(directory).expanduser().resolve() / values["dist"]
    if target.exists():
        raise AlreadyExists("Folder", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        for relative, template in (FILES if tables else FILES_NO_TABLES).items():
            path = target / render(relative, values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(template, values), encoding="utf-8")
        revision = generate_first_revision(target, values) if tables else None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return Created(target, values["dist"], values["package"], values["module"], revision)


_REVISION_SCRIPT = textwrap.dedent(
    """
    import sys, tempfile
    from ngo_kit import Kit, KitSettings, migrations
    import {package} as plugin

    with tempfile.TemporaryDirectory() as folder:
        settings = KitSettings(database_url=f"sqlite:///{{folder}}/scaffold.db",
                               environment="development")
        kit = Kit(settings=settings, modules=["{module}"], plugins=[plugin], autoload=False)
        kit.upgrade()
        print(migrations.revision(kit, "{module}", "{module} tables"))
        kit.dispose()
    """
)


def generate_first_revision(target: Path, values: dict[str, str]) -> Path:
    """Autogenerate the module's first Alembic revision from its models, in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NGO_KIT_")}
    src = str(target / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    script = _REVISION_SCRIPT.format(package=values["package"], module=values["module"])
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=scratch,
            check=False,
        )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise NgoKitError("The first migration could not be generated: {error}", error=last)
    path = Path(result.stdout.strip().splitlines()[-1])
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(line.rstrip() for line in lines) + "\n", encoding="utf-8")
    return path
