"""The ``ngo-kit`` command line.

User mistakes (bad input, unknown organisation, broken configuration) print one line on stderr
and exit with status 2, or 1 for a failed verification; never a traceback.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
import pluggy

from ngo_kit import throttle
from ngo_kit.errors import IntegrityFailed, NgoKitError
from ngo_kit.i18n import normalise_locale
from ngo_kit.kit import Kit
from ngo_kit.plugins import Module, Registrar, collect, load_entry_points, new_plugin_manager
from ngo_kit.settings import KitSettings
from ngo_kit.tenancy import SYSTEM

F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    """What every command receives: options, and the Kit built on first use."""

    def __init__(self, database_url: str | None, modules: tuple[str, ...], autoload: bool) -> None:
        self.database_url = database_url
        # "--module core" alone means core without optional modules
        self.modules = [m for m in modules if m != "core"] if modules else None
        self.autoload = autoload
        self._kit: Kit | None = None

    @property
    def kit(self) -> Kit:
        """The Kit for this invocation (built lazily, so ``--help`` needs no database)."""
        if self._kit is None:
            self._kit = Kit(self.database_url, modules=self.modules, autoload=self.autoload)
        return self._kit


def pass_kit(func: F) -> F:
    """Decorate a command so it receives the ``Kit`` as its first argument."""

    @click.pass_obj
    @functools.wraps(func)
    def wrapper(state: CliState, *args: Any, **kwargs: Any) -> Any:
        return func(state.kit, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="NGO_KIT_DATABASE_URL",
    help="Database URL (default sqlite:///ngo_kit.db).",
)
@click.option(
    "--module",
    "modules",
    multiple=True,
    help="Enable only these modules (repeatable; 'core' alone: no optional module).",
)
@click.option("--no-autoload", is_flag=True, help="Load only ngo-kit's own plugins.")
@click.option(
    "--lang",
    help="Language of messages: en or zh_CN (default: from LC_ALL, LC_MESSAGES or LANG).",
)
@click.version_option(package_name="ngo-kit", prog_name="ngo-kit", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    modules: tuple[str, ...],
    no_autoload: bool,
    lang: str | None,
) -> None:
    """ngo-kit: standard app modules for non-profits."""
    ctx.obj = CliState(database_url, modules, not no_autoload)


@cli.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Also list hooks of ngo-kit's own plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_kit
def plugins_command(kit: Kit, show_all: bool, as_json: bool) -> None:
    """List loaded plugins: version, modules provided and hooks implemented."""
    infos = [i for i in kit.plugin_info() if show_all or not i.builtin or i.modules]
    if as_json:
        click.echo(json.dumps([i.__dict__ for i in infos], indent=2))
        return
    for info in infos:
        version = (
            f"{info.distribution} {info.version}"
            if info.distribution
            else "(not installed; passed in)"
        )
        click.echo(f"{info.name}  [{version}]{'  built-in' if info.builtin else ''}")
        if info.modules:
            click.echo(f"    modules: {', '.join(info.modules)}")
        if info.hooks and (show_all or not info.builtin):
            click.echo(f"    hooks:   {', '.join(info.hooks)}")


# --- db -----------------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Database migrations (Alembic, one branch per module)."""


@db_group.command("upgrade")
@click.argument("target", default="heads")
@pass_kit
def db_upgrade(kit: Kit, target: str) -> None:
    """Apply migrations (default: every enabled module's head)."""
    from ngo_kit import migrations

    before = migrations.modules_at(kit)
    migrations.upgrade(kit, target)
    after = migrations.modules_at(kit)
    migrated = [m for m, rev in sorted(after.items()) if before.get(m) != rev]
    unchanged = [m for m, rev in sorted(after.items()) if before.get(m) == rev]
    if migrated:
        click.echo(f"migrated: {', '.join(migrated)}")
    if unchanged:
        click.echo(f"up to date already: {', '.join(unchanged)}")
    click.echo(f"database at: {migrations.describe(after)}")


@db_group.command("downgrade")
@click.argument("target")
@pass_kit
def db_downgrade(kit: Kit, target: str) -> None:
    """Revert migrations to TARGET (a revision, 'base', or '<module>@-1')."""
    from ngo_kit import migrations

    migrations.downgrade(kit, target)
    click.echo(f"database at: {migrations.describe(migrations.modules_at(kit))}")


@db_group.command("current")
@pass_kit
def db_current(kit: Kit) -> None:
    """Show the revisions the database is at, and whether it is behind."""
    from ngo_kit import migrations

    now = migrations.modules_at(kit)
    click.echo(f"current: {migrations.describe(now) if now else 'base (empty)'}")
    behind = migrations.pending_heads(kit)
    click.echo("up to date" if not behind else f"behind; to apply: {', '.join(behind)}")


@db_group.command("history")
@pass_kit
def db_history(kit: Kit) -> None:
    """List the revisions of every enabled module."""
    from ngo_kit import migrations

    click.echo(migrations.history(kit), nl=False)


@db_group.command("revision")
@click.option(
    "--module", "module", required=True, help="The module (or 'core') the revision belongs to."
)
@click.option("-m", "--message", required=True, help="What the revision changes.")
@click.option("--empty", is_flag=True, help="Write an empty revision instead of autogenerating.")
@pass_kit
def db_revision(kit: Kit, module: str, message: str, empty: bool) -> None:
    """Write a new migration for MODULE from the difference between its models and the database."""
    from ngo_kit import migrations

    click.echo(migrations.revision(kit, module, message, autogenerate=not empty))


# --- organisations --------------------------------------------------------------------------


@cli.group("org")
def org_group() -> None:
    """Organisations (tenants)."""


@org_group.command("create")
@click.argument("slug")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--locale", default="en", show_default=True)
@pass_kit
def org_create(kit: Kit, slug: str, name: str, timezone: str, locale: str) -> None:
    """Create an organisation with the default roles."""
    org = kit.create_organisation(slug, name, timezone=timezone, locale=locale)
    click.echo(f"created {org.slug} ({org.id})")


@org_group.command("list")
@pass_kit
def org_list(kit: Kit) -> None:
    """List every organisation."""
    with kit.begin(actor=SYSTEM) as tx:
        orgs = tx.tenancy.list_organisations()
    for org in orgs:
        click.echo(f"{org.slug}\t{org.name}\t{org.timezone}\t{org.locale}\t{org.id}")
    if not orgs:
        click.echo("no organisations yet: ngo-kit org create SLUG NAME")


@cli.group("api-keys")
def api_keys_group() -> None:
    """API keys of an organisation, for machine clients (as the system actor)."""


@api_keys_group.command("create")
@click.option("--org", "org", required=True, help="The organisation's slug.")
@click.option("--name", required=True, help="A name people recognise (audit rows show it).")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="A permission (repeat for more)."
)
@click.option(
    "--expires",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="When it stops working (UTC).",
)
@pass_kit
def api_keys_create(
    kit: Kit, org: str, name: str, scopes: tuple[str, ...], expires: dt.datetime | None
) -> None:
    """Create a key and print it: the only time it is shown."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        created = tx.api_keys.create(
            name=name,
            scopes=list(scopes),
            expires_at=expires.replace(tzinfo=dt.UTC) if expires is not None else None,
        )
    click.echo(f"created {created.name} ({created.id})")
    click.echo(created.key)


@api_keys_group.command("list")
@click.option("--org", "org", required=True, help="The organisation's slug.")
@click.option("--all", "include_revoked", is_flag=True, help="Also list revoked keys.")
@pass_kit
def api_keys_list(kit: Kit, org: str, include_revoked: bool) -> None:
    """List the organisation's keys (never their secrets)."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        keys = tx.api_keys.list_keys(include_revoked=include_revoked)
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.prefix}\t{key.name}\t{','.join(key.scopes)}\t{state}\t{key.id}")


@api_keys_group.command("revoke")
@click.option("--org", "org", required=True, help="The organisation's slug.")
@click.argument("key_id")
@pass_kit
def api_keys_revoke(kit: Kit, org: str, key_id: str) -> None:
    """Revoke the key KEY_ID at once."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        key = tx.api_keys.revoke(key_id)
    click.echo(f"revoked {key.name} ({key.id})")


@api_keys_group.command("purge")
@pass_kit
def api_keys_purge(kit: Kit) -> None:
    """Delete API key throttle counts whose window has ended (schedule it daily)."""
    done = throttle.purge(kit, older_than_seconds=kit.settings.api_key_window_seconds)
    click.echo(f"purged {done} throttle counts")


# --- integrity and outbox -------------------------------------------------------------------


@cli.command("verify")
@click.option(
    "--against",
    "against",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    metavar="CHECKPOINT",
    help="Also hold every chain to this signed checkpoint (a file, or a directory whose "
    "newest checkpoint is used): rewritten history and cut-off rows before it are named.",
)
@pass_kit
def verify_command(kit: Kit, against: Path | None) -> None:
    """Recompute every hash chain and balance; exit 1 and name the first break of each."""
    problems = kit.verify(against=against)
    names = ", ".join(str(getattr(c, "name", c)) for c in kit.checks)
    if not problems:
        held = f", against the checkpoint {against}" if against is not None else ""
        click.echo(f"ok: {len(kit.checks)} checks passed ({names}){held}")
        return
    for problem in problems:
        click.echo(f"FAILED {problem}", err=True)
    sys.exit(1)


@cli.command("anchor")
@click.option(
    "--to",
    "to",
    type=click.Path(path_type=Path),
    default=None,
    metavar="PATH",
    help="Write the checkpoint to this file, or to a new timestamped file in this directory.",
)
@click.option(
    "--send",
    "send",
    multiple=True,
    metavar="CHANNEL:RECIPIENT",
    help="Send the checkpoint through the outbox, e.g. email:auditor@example.org (repeatable).",
)
@pass_kit
def anchor_command(kit: Kit, to: Path | None, send: tuple[str, ...]) -> None:
    """Verify, then sign the head of every chain and keep it outside the database.

    Run it from cron; 'ngo-kit verify --against' then detects history rewritten or cut off
    before the checkpoint. Exits 1 without a checkpoint when verification fails.
    """
    targets: list[tuple[str, str]] = []
    for target in send:
        channel, sep, recipient = target.partition(":")
        if not sep or not channel or not recipient:
            raise click.BadParameter(f"{target!r} is not CHANNEL:RECIPIENT", param_hint="'--send'")
        targets.append((channel, recipient))
    if to is None and not targets:
        raise click.UsageError("say where the checkpoint goes: --to PATH and/or --send")
    try:
        checkpoint = kit.anchor(to=to, send=targets)
    except IntegrityFailed as exc:
        click.echo(f"FAILED {exc.params['first']}", err=True)
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(1)
    where = [str(to)] if to is not None else []
    where += [f"{channel}:{recipient}" for channel, recipient in targets]
    click.echo(
        f"checkpoint of {len(checkpoint.heads)} chain heads at {checkpoint.label} "
        f"(key {checkpoint.key_id}): {', '.join(where)}"
    )


@cli.group("outbox")
def outbox_group() -> None:
    """The message outbox."""


@outbox_group.command("work")
@click.option("--batch", default=100, show_default=True, help="Messages claimed per pass.")
@click.option("--forever", is_flag=True, help="Keep polling instead of stopping when none is due.")
@click.option(
    "--interval", default=1.0, show_default=True, help="Seconds between polls with --forever."
)
@pass_kit
def outbox_work(kit: Kit, batch: int, forever: bool, interval: float) -> None:
    """Deliver due messages (several workers may run at once on PostgreSQL and MariaDB)."""
    result = kit.outbox.work(batch=batch, once=not forever, idle_sleep=interval)
    click.echo(f"sent {result.sent}, failed {result.failed} (will retry), dead {result.dead}")


@outbox_group.command("retry")
@pass_kit
def outbox_retry(kit: Kit) -> None:
    """Queue every dead message again."""
    click.echo(f"requeued {kit.outbox.retry_dead()} messages")


# --- generated documents ----------------------------------------------------------------------


@cli.command("reference")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/reference"),
    show_default=True,
    help="The folder the pages are written to.",
)
@click.pass_obj
def reference_command(state: CliState, out: Path) -> None:
    """Write the operation reference: one page per installed module, from its declarations."""
    from ngo_kit.reference import installed_modules, write_reference

    modules = installed_modules(autoload=state.autoload)
    if state.modules is not None:
        modules = [m for m in modules if m.name in state.modules]
    for path in write_reference(out, modules):
        click.echo(f"wrote {path}")


@cli.command("openapi")
@click.option(
    "--modules",
    "chosen",
    default=None,
    metavar="NAME,NAME",
    help="Only these modules (comma-separated; default: every installed module).",
)
@click.pass_obj
def openapi_command(state: CliState, chosen: str | None) -> None:
    """Print the OpenAPI document of the HTTP API (JSON), for generating clients."""
    from ngo_kit.web import create_app

    names = [n.strip() for n in chosen.split(",") if n.strip()] if chosen else state.modules
    # no database is read: an in-memory one only lets the kit be built
    kit = Kit("sqlite://", modules=names, autoload=state.autoload)
    click.echo(json.dumps(create_app(kit).openapi(), indent=2, sort_keys=True))


# --- entry point ------------------------------------------------------------------------------


def _add_plugin_commands(group: click.Group, argv: list[str]) -> None:
    """Let plugins add commands; they are found without building a Kit (no database needed).

    Then the operations the enabled modules declare with ``cli=`` become commands of their
    module's group, unless the module wrote one of that name by hand.
    """
    pm: pluggy.PluginManager = new_plugin_manager()
    autoload = "--no-autoload" not in argv and not KitSettings().disable_plugin_autoload
    load_entry_points(pm, autoload=autoload)
    chosen = _chosen_modules(argv)
    provided = collect(
        pm, "ngo_kit_register_modules", Registrar("module", Module, lambda m: m.name)
    )
    for impl in reversed(pm.hook.ngo_kit_register_commands.get_hookimpls()):
        modules = {name for name, reg in provided.items.items() if reg.plugin == impl.plugin_name}
        if chosen is not None and modules and not modules & chosen:
            continue  # the plugin's modules are not enabled: its commands would have no service
        scratch = click.Group()
        impl.function(cli=scratch)
        for name, command in scratch.commands.items():
            if name in group.commands:
                raise NgoKitError(
                    "Plugin '{plugin}' adds command '{name}', which is taken already.",
                    plugin=impl.plugin_name,
                    name=name,
                )
            group.add_command(command, name)
    from ngo_kit.operation_commands import add_operation_commands

    add_operation_commands(
        group, [m for m in provided.values() if chosen is None or m.name in chosen]
    )


def command_line(argv: list[str] | None = None) -> click.Group:
    """The ``ngo-kit`` group with the installed plugins' commands, as ``argv`` would get it.

    A fresh copy each call: the module-level ``cli`` is never changed, so building the command
    line twice in one process (tests, embedding) cannot register a command twice.
    """
    root = copy.copy(cli)
    root.commands = dict(cli.commands)
    _add_plugin_commands(root, list(argv or []))
    return root


def _chosen_modules(argv: list[str]) -> set[str] | None:
    """The modules named with ``--module`` before the command, or ``None`` for all."""
    chosen: set[str] = set()
    for i, arg in enumerate(argv):
        if arg == "--module" and i + 1 < len(argv):
            chosen.add(argv[i + 1])
        elif arg.startswith("--module="):
            chosen.add(arg.split("=", 1)[1])
        elif not arg.startswith("-") and (
            i == 0 or argv[i - 1] not in ("--module", "--database-url")
        ):
            break  # the command name: options after it are the command's own
    return chosen or None


def cli_locale(argv: list[str], environ: Mapping[str, str]) -> str:
    """The language of the command line's messages: ``--lang``, else the environment's locale
    (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as POSIX orders them), never an organisation's."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return normalise_locale(argv[i + 1])
        if arg.startswith("--lang="):
            return normalise_locale(arg.split("=", 1)[1])
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return normalise_locale(environ[name])
    return normalise_locale(None)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; ngo-kit errors become one line on stderr and exit status 2.

    Messages are in the command line's language (:func:`cli_locale`), whatever the locale of
    the organisation a command works in.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    locale = cli_locale(args, os.environ)
    try:
        command_line(args).main(args=args, prog_name="ngo-kit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NgoKitError as exc:
        click.echo(f"error [{exc.code}]: {exc.message_in(locale)}", err=True)
        sys.exit(2)
    except SystemExit:
        raise
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError | OSError):
            click.echo(f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
            sys.exit(2)
        raise
