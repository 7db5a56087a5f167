"""``ngo-kit registration ...`` commands: answer personal-data requests from the command line,
and purge what no rule reads any more."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ngo_kit.cli import pass_kit
from ngo_kit.tenancy import SYSTEM

if TYPE_CHECKING:
    from ngo_kit.kit import Kit


@click.group("registration")
def registration_group() -> None:
    """Accounts: export or erase a person's personal data (PIPL / GDPR requests); purge."""


@registration_group.command("export")
@click.argument("user_id", type=click.UUID)
@click.option("--org", "org", required=True, help="Slug of an organisation the person is in.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
@pass_kit
def export_command(kit: Kit, user_id: uuid.UUID, org: str, output: Path | None) -> None:
    """Print (or write) everything the kit holds about USER_ID, every organisation included."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        data = tx.registration.export_personal_data(user_id)
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"personal data of {user_id} written to {output}")


@registration_group.command("erase")
@click.argument("user_id", type=click.UUID)
@click.option("--org", "org", required=True, help="Slug of an organisation the person is in.")
@click.confirmation_option(prompt="Erase this person's personal data everywhere?")
@pass_kit
def erase_command(kit: Kit, user_id: uuid.UUID, org: str) -> None:
    """Erase (pseudonymise) USER_ID: personal data removed, ids kept for ledgers and audit."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.registration.get_user(user_id)  # NotFound unless a member of --org
        tx.registration.erase(user_id)
    click.echo(f"personal data of {user_id} erased")


@registration_group.command("purge")
@click.option(
    "--keep-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Keep ended sessions this many days (they show in the person's data export).",
)
@pass_kit
def purge_command(kit: Kit, keep_days: int) -> None:
    """Delete ended sessions, used or expired codes and throttle counts past their window."""
    with kit.begin(actor=SYSTEM) as tx:
        done = tx.registration.purge(keep_days=keep_days)
    click.echo(
        f"purged {done.sessions} sessions, {done.codes} one-time codes, "
        f"{done.throttles} throttle counts"
    )
