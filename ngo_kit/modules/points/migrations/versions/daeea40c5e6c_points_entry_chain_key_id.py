"""points_entry: key_id, the chain key each row is hashed with

Rows already in the table were hashed with plain SHA-256 and get the reserved key id
``sha256``, under which ``ngo-kit verify`` still checks them; new rows are hashed with the
newest chain key (``ngo_kit.chain_keys``).

Revision ID: daeea40c5e6c
Revises: e981924155d7
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ngo_kit.migrations import drop_column

revision: str = 'daeea40c5e6c'
down_revision: str | Sequence[str] | None = 'e981924155d7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'points_entry',
        sa.Column('key_id', sa.String(length=16), server_default='sha256', nullable=False),
    )


def downgrade() -> None:
    drop_column('points_entry', 'key_id')
