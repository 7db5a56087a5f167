"""quantities exact on SQLite

Revision ID: 893e2ae9678a
Revises: 0e87fac9f2c6
Create Date: 2026-12-07 21:30:00.000000

SQLite held quantities as binary floating point (1234567890123.4567 read back as ...4568);
they become exact integer ten-thousandths in the same NUMERIC(18, 4) columns. Other databases
are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from ngo_kit.migrations import scale_sqlite_quantities, unscale_sqlite_quantities

revision: str = '893e2ae9678a'
down_revision: str | Sequence[str] | None = '0e87fac9f2c6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUANTITIES: dict[str, tuple[str, ...]] = {
    "volunteer_certificate": ("hours",),
    "volunteer_hours": ("hours",),
    "volunteer_hours_claim": ("hours",),
    "volunteer_profile": ("latitude", "longitude", "hours_total"),
    "volunteer_task": ("quantity", "assigned", "done"),
    "volunteer_assignment": ("quantity", "progress", "accepted_quantity"),
    "volunteer_shift": ("latitude", "longitude"),
}


def upgrade() -> None:
    scale_sqlite_quantities(QUANTITIES)


def downgrade() -> None:
    unscale_sqlite_quantities(QUANTITIES)
