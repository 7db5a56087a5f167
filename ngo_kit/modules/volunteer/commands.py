"""``ngo-kit volunteer ...`` commands: import volunteers, export hours."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ngo_kit.cli import pass_kit
from ngo_kit.tenancy import SYSTEM

if TYPE_CHECKING:
    from ngo_kit.kit import Kit


@click.group("volunteer")
def volunteer_group() -> None:
    """Volunteers: import profiles, export hours."""


@volunteer_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org", required=True, help="The organisation's slug.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write refused rows (line, reason) to this CSV.",
)
@click.option("--batch-size", default=2000, show_default=True)
@pass_kit
def import_command(
    kit: Kit, path: Path, org: str, errors_path: Path | None, batch_size: int
) -> None:
    """Create volunteer profiles from a CSV or XLSX file (one transaction)."""
    from ngo_kit.modules.volunteer import files

    total = files.count_rows(path)
    progress: Any = click.progressbar(length=total, label="importing", file=sys.stderr)
    with progress as bar, kit.begin(org=org, actor=SYSTEM) as tx:
        update: Any = bar.update
        report = tx.volunteer.import_profiles(
            files.read_rows(path), batch_size=batch_size, on_batch=update
        )
    click.echo(f"{report.imported} of {report.rows} rows imported, {len(report.errors)} refused")
    for line, reason in report.errors[:20]:
        click.echo(f"  row {line}: {reason}", err=True)
    if errors_path is not None:
        files.write_table(
            errors_path, [{"row": line, "reason": reason} for line, reason in report.errors]
        )


@volunteer_group.command("export-hours")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--org", "org", required=True, help="The organisation's slug.")
@click.option(
    "--by",
    type=click.Choice(["volunteer", "activity", "month"]),
    default="volunteer",
    show_default=True,
)
@pass_kit
def export_hours_command(kit: Kit, path: Path, org: str, by: str) -> None:
    """Write net service hours grouped by volunteer, activity or month to CSV or XLSX."""
    with kit.begin(org=org, actor=SYSTEM) as tx:
        count = tx.volunteer.export_hours(str(path), by=by)
    click.echo(f"{count} rows written to {path}")
