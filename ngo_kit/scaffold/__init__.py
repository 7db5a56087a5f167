"""ngo-kit's scaffold plugin: the ``ngo-kit new-plugin NAME`` command.

Registered like any plugin, through the ``ngo_kit`` entry-point group (``scaffold``), and only
adds a command: the generator itself (:mod:`ngo_kit.scaffold.generate`) is imported when the
command runs, so building a Kit costs nothing.
"""

from __future__ import annotations

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
def new_plugin(name: str, directory: Path) -> None:
    """Create a working plugin package, ngo-kit-NAME, ready to install and test.

    It holds a module with a model, a service, a permission, an event hook, a hook
    implementation, its first migration (generated), a README and tests that use
    ngo_kit.testing. NAME is lowercase letters, digits and hyphens, such as "meals".
    """
    from ngo_kit.scaffold.generate import create_plugin

    created = create_plugin(name, directory)
    click.echo(f"created {created.path} (module '{created.module}', package {created.package})")
    click.echo("next:")
    click.echo(f"  pip install -e {created.path}")
    click.echo(f"  python -m pytest {created.path / 'tests'}")
