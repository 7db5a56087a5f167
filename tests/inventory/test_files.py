"""CSV and XLSX: exports, and imports that write everything or nothing with a per-row report."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import Workbook, load_workbook

from ngo_kit import SYSTEM, Kit, ValidationFailed
from ngo_kit.modules.inventory.testing import Worked
from ngo_kit.tenancy import OrgRead

D = Decimal


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_stock_export_matches_the_report_in_csv_and_xlsx(
    kit: Kit, catalogue: OrgRead, worked: Worked
) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        as_csv = tx.inventory.export_stock("csv")
        as_xlsx = tx.inventory.export_stock("xlsx", location="wh")
        history = tx.inventory.export_history("csv", donation="D-100")
    rows = list(csv.reader(io.StringIO(as_csv.decode("utf-8-sig"))))
    assert rows[0] == ["location", "item", "category", "lot", "expires_on", "quantity", "value"]
    assert rows[1:] == [
        ["shelf-1", "kit", "comfort", "", "", "8", "120"],
        ["shelf-1", "milk", "nutrition", "M1", "2026-12-10", "1", "3"],
        ["shelf-1", "milk", "nutrition", "M2", "2027-01-31", "7", "17.5"],
        ["wh", "kit", "comfort", "", "", "3", ""],
    ]
    sheet = load_workbook(io.BytesIO(as_xlsx)).worksheets[0]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert [["" if c is None else str(c) for c in r] for r in cells] == rows
    assert all(isinstance(r[5], int | float) for r in cells[1:])  # quantities are numbers
    moves = list(csv.DictReader(io.StringIO(history.decode("utf-8-sig"))))
    assert [(m["kind"], m["item"], m["quantity"], m["from"], m["to"]) for m in moves] == [
        ("receive", "kit", "10", "donors", "wh"),
        ("receive", "milk", "12", "donors", "shelf-1"),
        ("receive", "milk", "24", "donors", "shelf-1"),
    ]


def test_item_import_writes_nothing_when_any_row_is_wrong(kit: Kit, catalogue: OrgRead) -> None:
    bad = (
        b"code,name,category,unit,tracked_by_lot,pack_units,reorder_level,colour\n"
        b"rice,Rice,nutrition,kg,no,bag=25,10,white\n"
        b"rice,Rice again,nutrition,kg,no,,,\n"
        b"soap,Soap,hygiene,bar,maybe,,,\n"
        b"kit,Clash,comfort,piece,no,,,\n"
        b",No code,,,,,-1,\n"
    )
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.import_items(bad, "csv")
        assert [it.code for it in tx.inventory.items()] == ["kit", "milk"]
    assert not report.ok and report.written == 0 and report.rows == 5
    got = [(e.row, e.field, e.rule) for e in report.errors]
    assert got == [
        (1, "colour", "extra_forbidden"),
        (3, "code", "duplicate_in_file"),
        (4, "tracked_by_lot", "bool_parsing"),
        (5, "code", "code_taken"),
        (6, "code", "missing"),
        (6, "reorder_level", "greater_than_equal"),
    ]
    assert all(e.message for e in report.errors)


def test_item_import_from_xlsx_creates_every_row(kit: Kit, catalogue: OrgRead) -> None:
    data = _xlsx([
        ["code", "name", "name_zh", "category", "unit", "tracked_by_lot", "perishable",
         "shelf_life_days", "pack_units", "reorder_level"],
        ["rice", "Rice", "大米", "nutrition", "kg", "否", "no", None, "bag=25", 10],
        ["formula", "Formula", "配方奶", "nutrition", "tin", "是", "yes", 540, "box=6; case=24", 2.5],
    ])  # fmt: skip
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.import_items(data, "xlsx")
        formula = tx.inventory.item("formula")
    assert (report.ok, report.written) == (True, 2)
    assert formula.tracked_by_lot and formula.perishable and formula.shelf_life_days == 540
    assert formula.pack_units == {"box": D(6), "case": D(24)}
    assert formula.reorder_level == D("2.5")


def test_opening_stock_import_is_all_or_nothing_and_traceable(kit: Kit, catalogue: OrgRead) -> None:
    bad = (
        b"item,location,quantity,lot,expires_on,unit_value\n"
        b"kit,wh,10,,,\n"
        b"milk,wh,5,,,\n"
        b"toy,wh,1,,,\n"
        b"kit,attic,1,,,\n"
        b"kit,donors,1,,,\n"
        b"kit,wh,1.5.0,,,\n"
    )
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.import_opening_stock(bad, "csv")
        assert tx.inventory.history() == []
    assert [(e.row, e.field, e.rule) for e in report.errors] == [
        (3, "lot", "lot_required"),
        (4, "item", "unknown_reference"),
        (5, "location", "unknown_reference"),
        (6, "location", "not_a_stock_location"),
        (7, "quantity", "decimal_parsing"),
    ]
    good = b"item,location,quantity,lot,expires_on,unit_value\nkit,wh,10,,,2\nmilk,shelf-1,1,L9,2027-03-01,\n"
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        report = tx.inventory.import_opening_stock(good, "csv", donation="OPEN-2026")
        assert (report.ok, report.written) == (True, 2)
        assert tx.inventory.stock_level("milk", "shelf-1", "L9") == D(1)
        assert tx.inventory.trace_donation("OPEN-2026").on_hand == D(11)
        assert tx.inventory.valuation() == D(20)


def test_unreadable_files_and_formats_are_refused(kit: Kit, catalogue: OrgRead) -> None:
    with kit.begin(org=catalogue, actor=SYSTEM) as tx:
        for data, fmt, rule in (
            (b"x", "pdf", "unknown_format"),
            (b"not a zip", "xlsx", "bad_file"),
        ):
            try:
                tx.inventory.import_items(data, fmt)
            except ValidationFailed as exc:
                assert exc.rule == rule
            else:
                raise AssertionError(f"{fmt} accepted")
