"""ngo-kit's scaffold plugin: the ``ngo-kit new-plugin NAME`` command.

Registered like any plugin, through the ``ngo_kit`` entry-point group (``scaffold``), and only
adds a command: the generator itself (:mod:`ngo_kit.scaffold.generate`) is imported when the
command runs, so building a Kit costs nothing.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ngo_kit.hookspecs import hookimpl


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """Add ``ngo-kit new-plugin``."""
    cli.add_command(new_plugin)


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to create the plugin's folder ngo-kit-NAME in.",
)
@click.option(
    "--no-tables",
    is_flag=True,
    help="A module with no models or migrations, for a plugin that only reacts to events.",
)
def new_plugin(name: str, directory: Path, no_tables: bool) -> None:
    """Create a working plugin package, ngo-kit-NAME, ready to install and test.

    It holds a module with a model, a service, a permission, an event hook, a hook
    implementation, its first migration (generated), a README and tests on ngo-kit's pytest
    fixtures; with --no-tables, a module with no tables that reacts to an event. NAME is
    lowercase letters, digits and hyphens, such as "meals".

    The next steps it prints install into the environment ngo-kit runs in (this Python's
    pip), so the plugin is found by the same ngo-kit.
    """
    from ngo_kit.scaffold.generate import create_plugin

    created = create_plugin(name, directory, tables=not no_tables)
    click.echo(f"created {created.path} (module '{created.module}', package {created.package})")
    python = shlex.quote(sys.executable)
    click.echo("next, in the environment ngo-kit runs in:")
    click.echo(f"  {python} -m pip install -e {shlex.quote(str(created.path))}")
    click.echo(f"  {python} -m pytest {shlex.quote(str(created.path / 'tests'))}")
