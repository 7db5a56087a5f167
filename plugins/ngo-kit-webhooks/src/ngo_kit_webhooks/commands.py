"""``ngo-kit webhooks ...``: manage an organisation's endpoints from the command line.

Commands act as the system actor (an operator at the console); each change is audited like
any other. The secret is printed once, when an endpoint is added or its secret rotated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ngo_kit.cli import pass_kit
from ngo_kit.errors import NgoKitError
from ngo_kit.tenancy import SYSTEM
from ngo_kit_webhooks.schemas import EVENTS

if TYPE_CHECKING:
    from ngo_kit.kit import Kit


def _service(kit: Kit, tx: Any) -> Any:
    if "webhooks" not in kit.modules:
        raise NgoKitError(
            "The webhooks module is not enabled (enabled: {modules}).",
            modules=", ".join(kit.modules) or "none",
        )
    return tx.service("webhooks")


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints of an organisation (ngo-kit-webhooks)."""


@webhooks_group.command("list")
@click.argument("org")
@pass_kit
def list_command(kit: Kit, org: str) -> None:
    """List ORG's endpoints: id, active or paused, events, URL."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        endpoints = _service(kit, tx).list_endpoints()
    for e in endpoints:
        state = "active" if e.active else "paused"
        click.echo(f"{e.id}\t{state}\t{','.join(e.events)}\t{e.url}")
    if not endpoints:
        click.echo(f"no endpoints yet: ngo-kit webhooks add {org} URL --event EVENT")


@webhooks_group.command("add")
@click.argument("org")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    type=click.Choice(EVENTS),
    help="An event to send (repeatable).",
)
@click.option("--description", default="", help="What receives the events.")
@pass_kit
def add_command(kit: Kit, org: str, url: str, events: tuple[str, ...], description: str) -> None:
    """Add an endpoint to ORG and print its secret (shown only now)."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        created = _service(kit, tx).add_endpoint(
            url=url, events=list(events), description=description
        )
    click.echo(f"added {created.id} for {', '.join(created.events)}")
    click.echo(f"secret: {created.secret}")


@webhooks_group.command("rotate-secret")
@click.argument("org")
@click.argument("endpoint_id")
@pass_kit
def rotate_command(kit: Kit, org: str, endpoint_id: str) -> None:
    """Give an endpoint of ORG a new secret and print it (shown only now)."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        rotated = _service(kit, tx).rotate_secret(endpoint_id)
    click.echo(f"secret: {rotated.secret}")


@webhooks_group.command("remove")
@click.argument("org")
@click.argument("endpoint_id")
@pass_kit
def remove_command(kit: Kit, org: str, endpoint_id: str) -> None:
    """Remove an endpoint of ORG (its queued deliveries are skipped)."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        _service(kit, tx).remove_endpoint(endpoint_id)
    click.echo(f"removed {endpoint_id}")
