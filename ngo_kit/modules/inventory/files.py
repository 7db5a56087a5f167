"""CSV and XLSX rows in and out (formats only; the rules live in the service)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from ngo_kit.errors import ValidationFailed
from ngo_kit.exports import write_csv, write_xlsx

FORMATS = ("csv", "xlsx")


def check_format(fmt: str) -> str:
    """``csv`` or ``xlsx``; ``ValidationFailed`` (``unknown_format``) otherwise."""
    if fmt not in FORMATS:
        raise ValidationFailed("fmt", "unknown_format")
    return fmt


def read_rows(data: bytes, fmt: str) -> list[dict[str, Any]]:
    """The data rows of a file as dicts keyed by the (lower-cased) header; blank cells dropped.

    Raises ``ValidationFailed`` (``bad_file``) when the file cannot be read.
    """
    check_format(fmt)
    try:
        rows = _read_csv(data) if fmt == "csv" else _read_xlsx(data)
    except (ValueError, KeyError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed("file", "bad_file", error=str(exc)[:200]) from None
    if not rows:
        return []
    header = [str(h or "").strip().lower() for h in rows[0]]
    out = []
    for raw in rows[1:]:
        cells = {
            header[i]: _clean(value)
            for i, value in enumerate(raw)
            if i < len(header) and header[i] and _clean(value) is not None
        }
        out.append(cells)
    while out and not out[-1]:
        out.pop()
    return out


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float):  # spreadsheets store numbers as floats; keep what was typed
        return format(value, "f").rstrip("0").rstrip(".") if value == value else None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _read_csv(data: bytes) -> list[list[Any]]:
    text = data.decode("utf-8-sig")
    return [row for row in csv.reader(io.StringIO(text))]


def _read_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise ValueError(f"not an XLSX workbook ({type(exc).__name__})") from None
    sheet = book.worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    book.close()
    return rows


def write_rows(header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str) -> bytes:
    """A CSV (UTF-8 with a byte-order mark, for spreadsheets) or XLSX file with ``header`` and
    ``rows``, through the kit's formula-neutralising writers (``ngo_kit.exports``)."""
    check_format(fmt)
    if fmt == "csv":
        out = io.StringIO()
        write_csv(out, header, rows)
        return out.getvalue().encode("utf-8-sig")
    buffer = io.BytesIO()
    write_xlsx(buffer, header, rows)
    return buffer.getvalue()


def parse_bool(value: Any) -> bool | None:
    """Yes/no in the words people type into spreadsheets (English and Chinese)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("1", "yes", "y", "true", "t", "是", "✓"):
        return True
    if text in ("0", "no", "n", "false", "f", "否", ""):
        return False
    raise ValueError(text)


def parse_packs(value: Any) -> dict[str, str]:
    """``box=12; case=48`` -> ``{"box": "12", "case": "48"}``."""
    if value is None:
        return {}
    out: dict[str, str] = {}
    for part in str(value).replace("；", ";").split(";"):
        if not part.strip():
            continue
        name, _, factor = part.partition("=")
        if not name.strip() or not factor.strip():
            raise ValueError(part)
        out[name.strip()] = factor.strip()
    return out
