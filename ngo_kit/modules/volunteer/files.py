"""File formats of the volunteer module: CSV/XLSX rows in and out (the certificate PDF is
``certificate_pdf.py``).

Readers are generators (one row at a time, XLSX in read-only mode) so an import's memory does
not grow with the file.
"""

from __future__ import annotations

import csv
import itertools
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

STATUSES = ("applicant", "approved", "inactive")


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a ``.csv`` (UTF-8, BOM allowed) or ``.xlsx`` file as dicts keyed by the header."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        yield from _xlsx_rows(path)
        return
    with path.open(newline="", encoding="utf-8-sig") as fh:
        yield from csv.DictReader(fh)


def _xlsx_rows(path: Path) -> Iterator[dict[str, Any]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h or "").strip() for h in next(rows, ())]
        for values in rows:
            if values is None or all(v is None for v in values):
                continue
            yield {h: ("" if v is None else v) for h, v in zip(header, values, strict=False) if h}
    finally:
        book.close()


def count_rows(path: str | Path) -> int:
    """How many data rows a file has (for a progress bar), reading it once without keeping it."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return sum(1 for _ in _xlsx_rows(path))
    with path.open("rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)


def parse_profile_row(row: Mapping[str, Any], known_skills: set[str], line: int) -> dict[str, Any]:
    """One import row as profile column values; ``ValueError`` says what is wrong with it."""
    raw_id = str(row.get("user_id") or "").strip()
    try:
        user_id = uuid.UUID(raw_id)
    except ValueError:
        raise ValueError(f"user_id: not an account id: {raw_id[:40]!r}") from None
    status = str(row.get("status") or "applicant").strip() or "applicant"
    if status not in STATUSES:
        raise ValueError(f"status: must be one of {', '.join(STATUSES)}")
    skills: dict[str, int] = {}
    for part in str(row.get("skills") or "").split(";"):
        part = part.strip()
        if not part:
            continue
        code, _, level = part.partition(":")
        code = code.strip()
        if code not in known_skills:
            raise ValueError(f"skills: {code!r} is not on the organisation's skill list")
        try:
            skills[code] = int(level or 1)
        except ValueError:
            raise ValueError(f"skills: level of {code!r} must be 1..5") from None
        if not 1 <= skills[code] <= 5:
            raise ValueError(f"skills: level of {code!r} must be 1..5")
    values: dict[str, Any] = {
        "_line": line,
        "user_id": user_id,
        "status": status,
        "skills": skills,
        "languages": [x.strip() for x in str(row.get("languages") or "").split(";") if x.strip()],
        "city": _text(row, "city", 100),
        "district": _text(row, "district", 100),
        "emergency_contact_name": _text(row, "emergency_contact_name", 200),
        "emergency_contact_phone": _text(row, "emergency_contact_phone", 40),
        "latitude": _coordinate(row, "latitude", 90),
        "longitude": _coordinate(row, "longitude", 180),
    }
    return values


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(row: Mapping[str, Any], name: str, limit: int) -> str:
    value = row.get(name)
    if not value:
        return ""
    value = str(value).strip()
    if len(value) > limit:
        raise ValueError(f"{name}: must be at most {limit} characters long")
    if _CONTROL.search(value):
        raise ValueError(f"{name}: must not contain control characters")
    return value


def _coordinate(row: Mapping[str, Any], name: str, bound: int) -> Decimal | None:
    value = str(row.get(name) or "").strip()
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name}: must be a number") from None
    if not number.is_finite() or abs(number) > bound:
        raise ValueError(f"{name}: must be between -{bound} and {bound}")
    return number


def write_table(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows to ``.csv`` or ``.xlsx`` (by the suffix) through the kit's
    formula-neutralising writers (``ngo_kit.exports``); returns how many were written.

    ``rows`` may be a generator: they are written as they come, so memory stays flat.
    """
    from ngo_kit.exports import write_csv, write_xlsx

    path = Path(path)
    stream = iter(rows)
    first = next(stream, None)
    header = list(first) if first is not None else []
    every = itertools.chain([first], stream) if first is not None else iter(())
    cells = ([row[h] for h in header] for row in every)
    if path.suffix.lower() == ".xlsx":
        return write_xlsx(path, header, cells)
    with path.open("w", newline="", encoding="utf-8") as fh:
        return write_csv(fh, header, cells)
