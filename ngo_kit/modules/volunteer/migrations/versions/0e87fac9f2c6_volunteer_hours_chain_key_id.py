"""volunteer_hours: key_id, the chain key each row is hashed with

Rows already in the table were hashed with plain SHA-256 and get the reserved key id
``sha256``, under which ``ngo-kit verify`` still checks them; new rows are hashed with the
newest chain key (``ngo_kit.chain_keys``).

Revision ID: 0e87fac9f2c6
Revises: 92587c49bb38
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ngo_kit.migrations import drop_column

revision: str = '0e87fac9f2c6'
down_revision: str | Sequence[str] | None = '92587c49bb38'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'volunteer_hours',
        sa.Column('key_id', sa.String(length=16), server_default='sha256', nullable=False),
    )


def downgrade() -> None:
    drop_column('volunteer_hours', 'key_id')
