"""inventory keys scoped to the actor and the operation

Revision ID: 3e8a6c1b5d47
Revises: d2a20d02a9cd
Create Date: 2026-12-07 21:50:00.000000

Move keys were unique per organisation: someone sending another person's key got that
person's operation back. Keys are now unique per (organisation, actor, operation, key),
stored as ``key_scope`` on an operation's first move with the call's ``key_fingerprint``
(neither is part of the move chain). Moves written before keep their ``key`` and get the
scope of the actor recorded on the move (``system`` moves the shared scope) and no
fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ngo_kit.idempotency import legacy_who, scope_digest

revision: str = '3e8a6c1b5d47'
down_revision: str | Sequence[str] | None = 'd2a20d02a9cd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('inventory_move', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_scope', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('key_fingerprint', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    moves = sa.table(
        'inventory_move',
        sa.column('id', sa.Uuid()),
        sa.column('kind'),
        sa.column('actor'),
        sa.column('key'),
        sa.column('key_scope'),
    )
    found = conn.execute(
        sa.select(moves.c.id, moves.c.kind, moves.c.actor, moves.c.key).where(
            moves.c.key.is_not(None)
        )
    ).all()
    updates = [
        {'_id': i, '_scope': scope_digest(f'inventory.{kind}', legacy_who(actor), key)}
        for i, kind, actor, key in found
    ]
    if updates:
        conn.execute(
            moves.update()
            .where(moves.c.id == sa.bindparam('_id'))
            .values(key_scope=sa.bindparam('_scope')),
            updates,
        )
    with op.batch_alter_table('inventory_move', schema=None) as batch_op:
        batch_op.drop_constraint('uq_inventory_move_org_id_key', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_inventory_move_org_id_key_scope'), ['org_id', 'key_scope']
        )


def downgrade() -> None:
    with op.batch_alter_table('inventory_move', schema=None) as batch_op:
        batch_op.drop_constraint('uq_inventory_move_org_id_key_scope', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_inventory_move_org_id_key'), ['org_id', 'key'])
        batch_op.drop_column('key_fingerprint')
        batch_op.drop_column('key_scope')
