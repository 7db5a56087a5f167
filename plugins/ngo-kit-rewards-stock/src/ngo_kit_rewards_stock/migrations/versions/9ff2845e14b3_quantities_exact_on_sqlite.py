"""quantities exact on SQLite

Revision ID: 9ff2845e14b3
Revises: 62c608fd7855
Create Date: 2026-12-07 21:30:00.000000

SQLite held quantities as binary floating point (1234567890123.4567 read back as ...4568);
they become exact integer ten-thousandths in the same NUMERIC(18, 4) columns. Other databases
are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from ngo_kit.migrations import scale_sqlite_quantities, unscale_sqlite_quantities

revision: str = "9ff2845e14b3"
down_revision: str | Sequence[str] | None = "62c608fd7855"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUANTITIES: dict[str, tuple[str, ...]] = {
    "rewards_stock_link": ("quantity",),
}


def upgrade() -> None:
    scale_sqlite_quantities(QUANTITIES)


def downgrade() -> None:
    unscale_sqlite_quantities(QUANTITIES)
