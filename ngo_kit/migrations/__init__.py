"""Alembic, driven by the kit: one version folder and branch label per module, one version table.

Core's revisions are branch ``core``; each module ships its own folder of versions whose first
revision carries ``branch_labels=("<module>",)`` and ``depends_on`` core's first revision.
Plugins that add tables do the same. ``upgrade`` applies every enabled branch's head.
"""

from __future__ import annotations

import io
import os
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ngo_kit.context import database_errors
from ngo_kit.errors import ConfigurationError

if TYPE_CHECKING:
    from ngo_kit.kit import Kit

HERE = Path(__file__).parent
VERSION_TABLE = "alembic_version"


def config(kit: Kit, *, stdout: TextIO | None = None) -> Config:
    """An Alembic ``Config`` for the kit's enabled modules (no ini file needed)."""
    cfg = Config(stdout=stdout) if stdout is not None else Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    locations = [str(p) for p in kit.version_locations().values()]
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    cfg.set_main_option(
        "sqlalchemy.url", kit.engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    cfg.attributes["kit"] = kit
    return cfg


def upgrade(kit: Kit, target: str = "heads") -> None:
    """Apply migrations up to ``target`` (default: every enabled branch's head).

    Raises ``DatabaseUnavailable`` when the database cannot be reached.
    """
    _check_known_branches(kit)
    with database_errors():
        command.upgrade(config(kit), target)


def downgrade(kit: Kit, target: str) -> None:
    """Revert migrations down to ``target`` (``base``, a revision, ``<module>@base``...)."""
    _check_known_branches(kit)
    with database_errors():
        command.downgrade(config(kit), target)


def current(kit: Kit) -> list[str]:
    """The revisions the database is at."""
    with database_errors(), kit.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return sorted(ctx.get_current_heads())


def heads(kit: Kit) -> list[str]:
    """The newest revision of every enabled branch."""
    return sorted(ScriptDirectory.from_config(config(kit)).get_heads())


def pending_heads(kit: Kit) -> list[str]:
    """The enabled branches' heads that the database has not reached yet (empty: up to date)."""
    script = ScriptDirectory.from_config(config(kit))
    applied = {
        rev.revision
        for rev in script.iterate_revisions(tuple(current(kit)), "base")
        if rev is not None
    }
    return sorted(set(script.get_heads()) - applied)


def history(kit: Kit) -> str:
    """Every revision of the enabled branches, newest first, as text."""
    out = io.StringIO()
    command.history(config(kit, stdout=out))
    return out.getvalue()


def revision(kit: Kit, module: str, message: str, *, autogenerate: bool = True) -> str:
    """Write a new revision for ``module`` (or ``core``) and return its file path.

    With ``autogenerate`` the revision holds the difference between the module's models and
    the database, which must be upgraded first.
    """
    locations = kit.version_locations()
    if module not in locations:
        raise ConfigurationError(
            "core.E003", "module '{name}' is not enabled or ships no migrations", name=module
        )
    cfg = config(kit)
    cfg.attributes["only_module"] = module
    script = ScriptDirectory.from_config(cfg)
    branch_heads = [
        s.revision
        for s in script.get_revisions("heads")
        if module in (s.branch_labels or ()) or _in_branch(script, s.revision, module)
    ]
    kwargs: dict[str, Any] = {
        "message": message,
        "autogenerate": autogenerate,
        "version_path": str(locations[module]),
    }
    if branch_heads:
        kwargs["head"] = f"{module}@head"
    else:
        kwargs["head"] = "base"
        kwargs["branch_label"] = module
        if module != "core":
            kwargs["depends_on"] = _core_base(script)
    with redirect_stdout(io.StringIO()):
        result = command.revision(cfg, **kwargs)
    scripts = result if isinstance(result, list) else [result]
    return str(scripts[0].path) if scripts and scripts[0] is not None else ""


def _in_branch(script: ScriptDirectory, rev: str, module: str) -> bool:
    return any(module in (s.branch_labels or ()) for s in script.iterate_revisions(rev, "base"))


def _core_base(script: ScriptDirectory) -> str:
    for rev in script.walk_revisions():
        if "core" in (rev.branch_labels or ()):
            return rev.revision
    raise ConfigurationError("core.E017", "core's first migration was not found")


def modules_at(kit: Kit) -> dict[str, str]:
    """The newest revision applied of each enabled module (and ``core``) the database has
    migrations of, by module name: what ``ngo-kit db upgrade`` and ``db current`` report.

    Refuses a database with migrations of modules this kit does not enable (``core.E014``).
    """
    _check_known_branches(kit)
    script = ScriptDirectory.from_config(config(kit))
    owners = {str(path.resolve()): name for name, path in kit.version_locations().items()}
    at: dict[str, str] = {}
    # newest first: the first revision met of a module is the newest applied of its branch
    for rev in script.iterate_revisions(tuple(current(kit)), "base"):
        if rev is not None and rev.path is not None:
            module = owners.get(str(Path(rev.path).parent.resolve()))
            if module is not None:
                at.setdefault(module, rev.revision)
    return at


def describe(at: dict[str, str]) -> str:
    """``core 1a2b3c4d5e6f, points 0f9e8d7c6b5a``, or ``base`` for an empty database."""
    return ", ".join(f"{module} {rev}" for module, rev in sorted(at.items())) or "base"


def _installed_owners(kit: Kit, revisions: list[str]) -> list[str]:
    """The installed modules, enabled or not, that ship ``revisions`` (``?`` for none)."""
    locations = dict(kit.version_locations())
    for name, registered in kit.available_modules.items():
        if registered.item.migrations is not None:
            locations[name] = Path(registered.item.migrations)
    cfg = config(kit)
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations.values()))
    try:
        script = ScriptDirectory.from_config(cfg)
    except Exception:  # installed folders that do not form one history: name no module
        return ["?" for _ in revisions]
    owners = {str(path.resolve()): name for name, path in locations.items()}
    found = []
    for rev in revisions:
        try:
            path = script.get_revision(rev).path
        except Exception:  # a revision no installed module ships
            path = None
        found.append(owners.get(str(Path(path).parent.resolve())) if path else None)
    return [owner or "?" for owner in found]


def _check_known_branches(kit: Kit) -> None:
    """Refuse to migrate a database that holds revisions of a module this kit does not enable."""
    try:
        applied = current(kit)
    except Exception:  # no version table yet
        return
    if not applied:
        return
    script = ScriptDirectory.from_config(config(kit))
    unknown = []
    for rev in applied:
        try:
            script.get_revision(rev)
        except Exception:
            unknown.append(rev)
    if not unknown:
        return
    owners = _installed_owners(kit, unknown)
    modules = ", ".join(sorted({o for o in owners if o != "?"})) or "-"
    strays = [rev for rev, owner in zip(unknown, owners, strict=True) if owner == "?"]
    if strays:
        raise ConfigurationError(
            "core.E014",
            "the database has migrations of modules this kit does not enable ({modules}) and "
            "revisions {revisions} of no installed module; enable the same modules, and install "
            "the same plugins, that created it",
            modules=modules,
            revisions=", ".join(strays),
        )
    raise ConfigurationError(
        "core.E014",
        "the database has migrations of modules this kit does not enable ({modules}); enable "
        "the same modules that created it",
        modules=modules,
    )


def scale_sqlite_quantities(columns: dict[str, tuple[str, ...]]) -> None:
    """In a module's migration: rewrite its ``Quantity`` columns on SQLite from binary floating
    point (how SQLite held NUMERIC values) to exact integer ten-thousandths.

    ``columns`` maps each table to its quantity columns. Each value becomes what the kit read
    from it before (the float printed to 4 decimal places), so no row and no digit the kit
    could read is lost. Does nothing on other databases, whose NUMERIC was exact already.
    """
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table, names in columns.items():
        for name in names:
            rows = bind.exec_driver_sql(
                f'SELECT rowid, "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL'
            ).all()
            scaled = [(_ten_thousandths(value), rowid) for rowid, value in rows]
            if scaled:
                bind.exec_driver_sql(f'UPDATE "{table}" SET "{name}" = ? WHERE rowid = ?', scaled)


def unscale_sqlite_quantities(columns: dict[str, tuple[str, ...]]) -> None:
    """The downgrade of ``scale_sqlite_quantities``: integer ten-thousandths back to floats."""
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table, names in columns.items():
        for name in names:
            bind.exec_driver_sql(f'UPDATE "{table}" SET "{name}" = "{name}" / 10000.0')


def _ten_thousandths(value: Any) -> int:
    """A SQLite NUMERIC(18, 4) value as written before 0.x (a float, or an integer when whole)
    as the integer count of ten-thousandths the kit read it as."""
    if isinstance(value, float):
        exact = Decimal(f"{value:.4f}")
    else:  # SQLite keeps a whole float as an integer; text only if written by hand
        exact = Decimal(str(value)).quantize(Decimal("0.0001"))
    return int(exact.scaleb(4))


def drop_column(table: str, column: str) -> None:
    """In a module's migration: drop ``column`` of ``table`` in place.

    On SQLite this is the native ``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35 and later)
    rather than a batch copy of the table: copying a table that other tables' rows refer to
    fails their foreign keys. Elsewhere it is Alembic's ``drop_column``.
    """
    from alembic import op

    if op.get_bind().dialect.name == "sqlite":
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)
