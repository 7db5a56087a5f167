"""Imports: catalogue items and opening stock from CSV or XLSX files, all or none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ngo_kit.errors import AlreadyExists, NotFound, ValidationFailed
from ngo_kit.modules.inventory.base import InventoryBase
from ngo_kit.modules.inventory.files import parse_bool, parse_packs, read_rows
from ngo_kit.modules.inventory.models import Category, Item
from ngo_kit.modules.inventory.schemas import ImportReport, ItemIn, ReceiveIn, RowError
from ngo_kit.operations import operation


class Imports(InventoryBase):
    """Catalogue items and opening stock read from files."""

    @operation(
        "POST /items/import", permission="inventory.manage", errors=(AlreadyExists,), custom=True
    )
    def import_items(self, data: bytes, fmt: str = "csv") -> ImportReport:
        """Create catalogue items from a file, all or none (``inventory.manage``).

        Columns: ``code, name, name_zh, category, unit, tracked_by_lot, perishable,
        shelf_life_days, reorder_level, allow_negative, pack_units`` (``box=12; case=48``).
        When any row is wrong nothing is written and the report lists every problem by row.
        """
        tx = self.tx
        tx.require("inventory.manage")
        rows = read_rows(data, fmt)
        errors = _unknown_columns(rows, ITEM_COLUMNS)
        codes = [str(r.get("code")) for r in rows if r.get("code")]
        taken = set(
            self.db.scalars(
                sa.select(Item.code).where(Item.org_id == tx.org_id, Item.code.in_(codes))
            )
        )
        categories = set(
            self.db.scalars(sa.select(Category.code).where(Category.org_id == tx.org_id))
        )
        specs: list[ItemIn] = []
        seen: set[str] = set()
        for n, row in enumerate(rows, start=2):
            payload: dict[str, Any] = {k: v for k, v in row.items() if k in ITEM_COLUMNS}
            try:
                for flag in ("tracked_by_lot", "perishable", "allow_negative"):
                    if flag in payload:
                        payload[flag] = _parse(flag, payload[flag], parse_bool, "bool_parsing")
                if "pack_units" in payload:
                    payload["pack_units"] = _parse(
                        "pack_units", payload["pack_units"], parse_packs, "invalid"
                    )
                spec = ItemIn.model_validate(payload)
            except ValidationFailed as exc:
                errors.extend(_row_errors(n, exc))
                continue
            if spec.code in seen:
                errors.append(_row_error(n, "code", "duplicate_in_file", value=spec.code))
            elif spec.code in taken:
                errors.append(_row_error(n, "code", "code_taken", value=spec.code))
            if spec.category is not None and spec.category not in categories:
                errors.append(_row_error(n, "category", "unknown_reference", value=spec.category))
            seen.add(spec.code)
            specs.append(spec)
        if errors:
            return ImportReport(ok=False, rows=len(rows), written=0, errors=tuple(errors))
        with tx.savepoint():
            for spec in specs:
                self._service._create_item(spec)
        return ImportReport(ok=True, rows=len(rows), written=len(specs))

    @operation("POST /opening-stock/import", permission="inventory.receive", custom=True)
    def import_opening_stock(
        self, data: bytes, fmt: str = "csv", *, donation: str = "opening-stock"
    ) -> ImportReport:
        """Receive opening stock from a file, all or none (``inventory.receive``).

        Columns: ``item, location, quantity, unit, lot, expires_on, unit_value, donor,
        donation`` (``donation`` defaults to the argument, so the opening stock is traceable
        like any receipt). When any row is wrong nothing is written and the report lists every
        problem by row.
        """
        tx = self.tx
        tx.require("inventory.receive")
        rows = read_rows(data, fmt)
        errors = _unknown_columns(rows, STOCK_COLUMNS)
        specs: list[ReceiveIn] = []
        for n, row in enumerate(rows, start=2):
            payload: dict[str, Any] = {
                ("to" if k == "location" else k): v for k, v in row.items() if k in STOCK_COLUMNS
            }
            payload.setdefault("donation", donation)
            try:
                spec = ReceiveIn.model_validate(payload)
                item = self._item(spec.item)
                self._holding(spec.to, "location")
                if spec.lot is None and item.tracked_by_lot:
                    raise ValidationFailed("lot", "lot_required")
                if spec.lot is not None and not item.tracked_by_lot:
                    raise ValidationFailed("lot", "lot_not_tracked")
                self._base_quantity(item, spec.quantity, spec.unit)
            except ValidationFailed as exc:
                errors.extend(_row_errors(n, exc))
                continue
            except NotFound as exc:
                field_name = {"Item": "item", "Location": "location"}.get(exc.kind, "item")
                errors.append(_row_error(n, field_name, "unknown_reference", value=exc.ident))
                continue
            specs.append(spec)
        if errors:
            return ImportReport(ok=False, rows=len(rows), written=0, errors=tuple(errors))
        with tx.savepoint():
            self._lock_receipt_rows(specs)
            for spec in specs:
                self._service._receive(spec, None)
        return ImportReport(ok=True, rows=len(rows), written=len(specs))


ITEM_COLUMNS = (
    "code", "name", "name_zh", "category", "unit", "tracked_by_lot", "perishable",
    "shelf_life_days", "reorder_level", "allow_negative", "pack_units",
)  # fmt: skip


STOCK_COLUMNS = (
    "item", "location", "quantity", "unit", "lot", "expires_on", "unit_value", "donor",
    "donation",
)  # fmt: skip


def _parse(field_name: str, value: Any, parser: Callable[[Any], Any], rule: str) -> Any:
    try:
        return parser(value)
    except ValueError:
        raise ValidationFailed(field_name, rule) from None


def _row_error(row: int, field_name: str, rule: str, **params: Any) -> RowError:
    error = ValidationFailed(field_name, rule, **params)
    return RowError(row=row, field=field_name, rule=rule, message=error.message)


def _row_errors(row: int, exc: ValidationFailed) -> list[RowError]:
    return [RowError(row=row, field=e.field, rule=e.rule, message=e.message) for e in exc.errors]


def _unknown_columns(rows: list[dict[str, Any]], known: tuple[str, ...]) -> list[RowError]:
    names = sorted({k for r in rows for k in r} - set(known))
    return [_row_error(1, name, "extra_forbidden") for name in names]
