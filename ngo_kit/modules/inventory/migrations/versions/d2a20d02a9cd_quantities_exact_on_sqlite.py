"""quantities exact on SQLite

Revision ID: d2a20d02a9cd
Revises: 4083d8be91b3
Create Date: 2026-12-07 21:30:00.000000

SQLite held quantities as binary floating point (1234567890123.4567 read back as ...4568);
they become exact integer ten-thousandths in the same NUMERIC(18, 4) columns. Other databases
are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from ngo_kit.migrations import scale_sqlite_quantities, unscale_sqlite_quantities

revision: str = 'd2a20d02a9cd'
down_revision: str | Sequence[str] | None = '4083d8be91b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUANTITIES: dict[str, tuple[str, ...]] = {
    "inventory_item": ("reorder_level",),
    "inventory_pack_unit": ("factor",),
    "inventory_move": ("quantity", "unit_value"),
    "inventory_stock": ("quantity",),
    "inventory_layer": ("quantity",),
    "inventory_allocation": ("quantity",),
    "inventory_need": ("quantity", "fulfilled"),
    "inventory_document_line": ("quantity", "unit_value"),
}


def upgrade() -> None:
    scale_sqlite_quantities(QUANTITIES)


def downgrade() -> None:
    unscale_sqlite_quantities(QUANTITIES)
