"""``ngo-kit volunteer ...`` commands: import volunteers, export hours."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
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


#: refused rows printed on stderr; past this many, every one of them goes to a file
SHOWN_REFUSALS = 20


@volunteer_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--org", "org", required=True, help="The organisation's slug.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every refused row (row, reason) to this CSV or XLSX file "
    f"(default when more than {SHOWN_REFUSALS} are refused: PATH's name with .refused.csv).",
)
@click.option("--batch-size", default=2000, show_default=True)
@pass_kit
def import_command(
    kit: Kit, path: Path, org: str, errors_path: Path | None, batch_size: int
) -> None:
    """Create volunteer profiles from a CSV or XLSX file (one transaction).

    Prints how many rows were imported and refused (they add up to the rows read) and every
    refused row with its reason; when more than 20 are refused, they go to a file instead.
    """
    from ngo_kit.modules.volunteer import files

    total = files.count_rows(path)
    progress: Any = click.progressbar(length=total, label="importing", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        spool = Path(scratch) / "refused.jsonl"
        with spool.open("w", encoding="utf-8") as fh:
            first: list[tuple[int, str]] = []

            def refused(line: int, reason: str) -> None:
                fh.write(json.dumps([line, reason], ensure_ascii=False) + "\n")
                if len(first) < SHOWN_REFUSALS:
                    first.append((line, reason))

            with progress as bar, kit.begin(org=org, actor=SYSTEM) as tx:
                update: Any = bar.update
                report = tx.volunteer.import_profiles(
                    files.read_rows(path),
                    batch_size=batch_size,
                    on_batch=update,
                    on_refused=refused,
                )
        click.echo(f"{report.imported} of {report.rows} rows imported, {report.refused} refused")
        many = report.refused > SHOWN_REFUSALS
        if many and errors_path is None:
            errors_path = path.with_name(f"{path.stem}.refused.csv")
        for line, reason in first:
            click.echo(f"  row {line}: {reason}", err=True)
        if errors_path is not None:
            # through the formula-neutralising writers: a reason may quote the row's own text
            written = files.write_table(errors_path, _spooled(spool))
            if many:
                click.echo(
                    f"  ... and {report.refused - SHOWN_REFUSALS} more: "
                    f"all {written} refused rows are in {errors_path}",
                    err=True,
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


def _spooled(spool: Path) -> Iterator[dict[str, Any]]:
    """The refused rows kept in ``spool`` (one JSON pair a line), as table rows."""
    with spool.open(encoding="utf-8") as fh:
        for line in fh:
            row, reason = json.loads(line)
            yield {"row": row, "reason": reason}
