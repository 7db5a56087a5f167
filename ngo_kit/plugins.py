"""Plugin manager, entry-point discovery, module declarations and dependency ordering."""

from __future__ import annotations

import importlib
import importlib.util
import re
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from ngo_kit import hookspecs
from ngo_kit.errors import ConfigurationError, PluginError

if TYPE_CHECKING:
    from ngo_kit.context import Context
    from ngo_kit.kit import Kit

ENTRY_POINT_GROUP = "ngo_kit"
DISTRIBUTION = "ngo-kit"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
_PERMISSION = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")

T = TypeVar("T")


@dataclass(frozen=True)
class Permission:
    """A permission, ``<area>.<verb>``, with the roles granted it in a new organisation."""

    name: str
    description: str = ""
    default_roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _PERMISSION.match(self.name):
            raise ConfigurationError(
                "core.E001",
                "permission name '{name}' must look like 'area.verb' in lowercase",
                name=self.name,
            )


@dataclass(frozen=True)
class Module:
    """A module: a named unit with tables, migrations, permissions, hooks and a service.

    ``service`` is a class (or callable) taking the ``tx`` and returning the object reached as
    ``tx.<name>``. ``models`` is the import path of the module defining its tables, whose names
    must start with ``<name>_``. ``migrations`` is the folder holding its Alembic versions,
    branch-labelled ``<name>``. ``hookspecs`` is a Python module of hook specifications that
    are added when the module is enabled. ``permissions`` and ``checks`` are registered while
    the module is enabled, as if its plugin returned them from ``ngo_kit_register_permissions``
    and ``ngo_kit_register_checks``. ``configure``, when given, is called with each kit that
    enables the module while the kit is built: it reads and checks the module's own settings and
    raises ``ConfigurationError`` for a bad one, so a misconfigured app fails at start-up, not
    on its first request. ``imports`` names the packages (top-level import names) the module
    needs beyond ngo-kit's own dependencies, and ``install`` what to ``pip install`` for them
    (``ngo-kit[volunteer]``): a kit that enables the module while one is missing refuses to
    start (``core.E040``), naming that line.
    """

    name: str
    version: str = "0.0.0"
    description: str = ""
    requires: tuple[str, ...] = ()
    permissions: tuple[Permission, ...] = ()
    checks: tuple[Any, ...] = ()
    service: Callable[[Context], Any] | None = None
    models: str | None = None
    hookspecs: types.ModuleType | None = None
    migrations: Path | None = None
    locale_dir: Path | None = None
    sends_messages: bool = False
    configure: Callable[[Kit], object] | None = None
    imports: tuple[str, ...] = ()
    install: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                "core.E001",
                "module name '{name}' must be 2 to 31 lowercase letters, digits or underscores",
                name=self.name,
            )


@dataclass(frozen=True)
class Channel:
    """A delivery channel for outbox messages (``console``, ``email``, ``sms``, ``webhook``)."""

    name: str
    production_ready: bool = True
    description: str = ""
    #: What happens to a message whose outcome went unrecorded (the worker stopped between the
    #: send and the record): ``True`` sends it again, with the same message id, for receivers
    #: that drop duplicates (a webhook); ``False`` never sends it twice and keeps it as dead.
    at_least_once: bool = False


@dataclass(frozen=True)
class PersonalData:
    """What a module or plugin holds about a person, for access requests and erasure (PIPL/GDPR).

    Registered through registration's ``ngo_kit_register_personal_data``. ``name`` is the
    section of the person's export (usually the module's name). ``tables`` are the tables in
    which rows are about a person (they hold the person's id); a test checks that every such
    table of every module and plugin is claimed here. Both callables run once per organisation
    of the person, with ``tx`` bound to it and with the system's rights (registration checked
    who may ask): ``export(tx, user_id)`` returns JSON-ready data, or ``None`` when nothing is
    held; ``erase(tx, user_id)`` pseudonymises, removing names, contacts and free text but
    keeping ids, so ledgers and hash chains stay whole.
    """

    name: str
    tables: tuple[str, ...]
    export: Callable[[Context, uuid.UUID], dict[str, Any] | None]
    erase: Callable[[Context, uuid.UUID], None]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                "core.E001",
                "personal data name '{name}' must be 2 to 31 lowercase letters, digits or "
                "underscores",
                name=self.name,
            )


@dataclass
class Registered(Generic[T]):
    """An item registered through a collect hook, tagged with the plugin that registered it."""

    item: T
    plugin: str


class Registrar(Generic[T]):
    """The ``register`` object a collect hook receives: checks type and duplicate names."""

    def __init__(self, kind: str, item_type: type[T] | tuple[type, ...], key: Callable[[T], str]):
        self.kind = kind
        self.item_type = item_type
        self.key = key
        self.items: dict[str, Registered[T]] = {}
        self.current_plugin = "?"

    def __call__(self, item: T) -> T:
        if not isinstance(item, self.item_type):
            raise ConfigurationError(
                "core.E001",
                "plugin '{plugin}' registered {got!r} as a {kind}",
                plugin=self.current_plugin,
                got=item,
                kind=self.kind,
            )
        name = self.key(item)
        if name in self.items:
            raise ConfigurationError(
                "core.E002",
                "{kind} '{name}' is registered twice: by plugin '{first}' and by plugin '{second}'",
                kind=self.kind,
                name=name,
                first=self.items[name].plugin,
                second=self.current_plugin,
            )
        self.items[name] = Registered(item, self.current_plugin)
        return item

    def values(self) -> list[T]:
        """The registered items, in registration order."""
        return [r.item for r in self.items.values()]

    def __iter__(self) -> Iterator[Registered[T]]:
        return iter(self.items.values())


def collect(
    pm: pluggy.PluginManager, hook_name: str, registrar: Registrar[T], **extra: Any
) -> Registrar[T]:
    """Call collect hook ``hook_name`` one plugin at a time so each item is tagged with its plugin.

    ``extra`` are further hook arguments (``kit`` for routes); an implementation may take any
    subset of them, as pluggy allows.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        registrar.current_plugin = impl.plugin_name
        offered = {"register": registrar, **extra}
        impl.function(**{name: offered[name] for name in impl.argnames})
    registrar.current_plugin = "?"
    return registrar


@dataclass
class PluginInfo:
    """What ``ngo-kit plugins`` shows of one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    modules: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    builtin: bool = False


def new_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with the core hook specifications; each Kit owns one."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_entry_points(
    pm: pluggy.PluginManager, *, autoload: bool
) -> dict[str, metadata.Distribution]:
    """Register the plugins of the ``ngo_kit`` entry-point group.

    ngo-kit's own modules come through this very group; with ``autoload=False`` only they are
    loaded and every other distribution's plugins are skipped.
    """
    found: dict[str, metadata.Distribution] = {}
    own = False
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        dist_name = _canonical(dist.name) if dist is not None else None
        is_builtin = dist_name == DISTRIBUTION
        own = own or is_builtin
        if not autoload and not is_builtin:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise ConfigurationError(
                "core.E008",
                "plugin '{name}' (entry point {value}) could not be loaded: {error}",
                name=ep.name,
                value=ep.value,
                error=repr(exc),
            ) from exc
        pm.register(plugin, name=ep.name)
        if dist is not None:
            found[ep.name] = dist
    if not own:
        raise ConfigurationError(
            "core.E009",
            "the ngo-kit distribution is not installed, so its modules cannot be found; "
            "run 'pip install ngo-kit' (or 'pip install -e .' in a checkout)",
        )
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_order(modules: dict[str, Module], wanted: Iterable[str]) -> list[Module]:
    """Order ``wanted`` so every module comes after the modules it requires.

    Raises ``ConfigurationError``: ``core.E003`` for an unknown module, ``core.E004`` for a
    requirement that is not enabled, ``core.E005`` for a cycle (naming its members).
    """
    wanted = list(dict.fromkeys(wanted))
    for name in wanted:
        if name not in modules:
            raise ConfigurationError(
                "core.E003",
                "module '{name}' is not installed; installed modules: {known}",
                name=name,
                known=", ".join(sorted(modules)) or "none",
            )
    enabled = set(wanted)
    for name in wanted:
        for req in modules[name].requires:
            if req not in enabled:
                raise ConfigurationError(
                    "core.E004",
                    "module '{name}' requires module '{req}', which is not enabled",
                    name=name,
                    req=req,
                )
    ordered: list[Module] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise ConfigurationError(
                "core.E005",
                "modules require each other in a cycle: {cycle}",
                cycle=" -> ".join(cycle),
            )
        state[name] = 1
        for req in modules[name].requires:
            visit(req, [*path, name])
        state[name] = 2
        ordered.append(modules[name])

    for name in sorted(wanted):
        visit(name, [])
    return ordered


def check_packages(module: Module) -> None:
    """Refuse (``core.E040``) a module whose ``imports`` are not all installed.

    Looks the packages up without importing them, so a kit's start-up stays cheap.
    """
    missing = _missing(module)
    if missing:
        raise ConfigurationError(
            "core.E040",
            "module '{name}' needs packages that are not installed ({missing}): "
            "pip install '{install}'",
            name=module.name,
            missing=", ".join(missing),
            install=module.install or " ".join(missing),
        )


def usable_modules(modules: dict[str, Module]) -> list[str]:
    """What ``modules=None`` enables: every installed module whose packages are installed too
    and whose required modules are usable (named explicitly, the others fail with
    ``core.E040`` or ``core.E004``)."""
    usable = {name for name, module in modules.items() if not _missing(module)}
    changed = True
    while changed:
        dropped = {n for n in usable if any(r not in usable for r in modules[n].requires)}
        usable -= dropped
        changed = bool(dropped)
    return [name for name in modules if name in usable]


def _missing(module: Module) -> list[str]:
    return [name for name in module.imports if not _installed(name)]


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a parent that cannot be imported, a blocked module
        return False


def import_models(module: Module) -> None:
    """Import the module's models so its tables join the shared metadata."""
    if module.models is not None:
        importlib.import_module(module.models)


def tables_by_module(module_names: Iterable[str]) -> dict[str, list[str]]:
    """Group the shared metadata's tables by owning module (the longest matching name prefix)."""
    from ngo_kit.db import Base

    names = sorted(module_names, key=len, reverse=True)
    owned: dict[str, list[str]] = {name: [] for name in names}
    for table in Base.metadata.sorted_tables:
        for name in names:
            if table.name.startswith(f"{name}_"):
                owned[name].append(table.name)
                break
    return owned


def plugin_name_for_exception(
    pm: pluggy.PluginManager, hook_name: str, exc: BaseException
) -> str | None:
    """Find which plugin's implementation of ``hook_name`` raised ``exc``, from its traceback."""
    caller = getattr(pm.hook, hook_name, None)
    if caller is None:
        return None
    codes = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()}
    tb = exc.__traceback__
    name = None
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code)
        if found is not None:
            name = found
        tb = tb.tb_next
    return name


def call_event(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call an event hook; an implementation's exception is re-raised naming its plugin.

    Errors that ngo-kit defines pass through with ``.plugin`` set (so callers can still catch
    ``InsufficientPoints``); anything else becomes ``PluginError`` with the original as cause.
    """
    from ngo_kit.errors import NgoKitError

    caller = getattr(pm.hook, hook_name)
    try:
        result: list[Any] = caller(**kwargs)
    except NgoKitError as exc:
        name = plugin_name_for_exception(pm, hook_name, exc)
        if name is not None and not hasattr(exc, "plugin"):
            exc.plugin = name  # type: ignore[attr-defined]
            exc.add_note(f"raised by plugin '{name}' in hook {hook_name}")
        raise
    except Exception as exc:
        name = plugin_name_for_exception(pm, hook_name, exc) or "?"
        raise PluginError(name, hook_name, exc) from exc
    return result
