"""A third-party plugin, installed by the tests, that adds a permission and a command."""

from __future__ import annotations

import click

from ngo_kit import Permission, hookimpl
from ngo_kit.plugins import Registrar


@hookimpl
def ngo_kit_register_permissions(register: Registrar[Permission]) -> None:
    """Declare the sample permission."""
    register(Permission("sample.greet", "greet people", ("member",)))


@hookimpl
def ngo_kit_register_commands(cli: click.Group) -> None:
    """Add `ngo-kit sample-hello`."""

    @cli.command("sample-hello")
    def sample_hello() -> None:
        """Say hello from the sample plugin."""
        click.echo("hello from ngo-kit-sample")
