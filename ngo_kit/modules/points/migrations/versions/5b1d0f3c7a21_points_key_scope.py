"""points keys scoped to the actor and the operation

Revision ID: 5b1d0f3c7a21
Revises: daeea40c5e6c
Create Date: 2026-12-07 21:15:00.000000

Idempotency keys were unique per organisation: member B sending member A's key got A's
operation back. Keys are now unique per (organisation, actor, operation, key), stored as
``key_scope``, with the call's ``key_fingerprint``. Rows written before keep their ``key`` and
get the scope of the actor recorded on their ledger entries (``system`` rows the shared
scope) and no fingerprint: a repeat of an older key by the same actor returns the first
result whatever its parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ngo_kit.idempotency import legacy_who, scope_digest

revision: str = '5b1d0f3c7a21'
down_revision: str | Sequence[str] | None = 'daeea40c5e6c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('points_txn', 'points_redemption')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('key_scope', sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column('key_fingerprint', sa.String(length=64), nullable=True))
    _backfill()
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'uq_{table}_org_id_key', type_='unique')
            batch_op.create_unique_constraint(
                batch_op.f(f'uq_{table}_org_id_key_scope'), ['org_id', 'key_scope']
            )


def _backfill() -> None:
    conn = op.get_bind()
    entry = sa.table('points_entry', sa.column('txn_id', sa.Uuid()), sa.column('actor'))
    for table, operation in (('points_txn', None), ('points_redemption', 'points.redeem')):
        rows = sa.table(
            table,
            sa.column('id', sa.Uuid()),
            sa.column('key'),
            sa.column('key_scope'),
            *([sa.column('kind')] if table == 'points_txn' else [sa.column('txn_id', sa.Uuid())]),
        )
        txn_id = rows.c.id if table == 'points_txn' else rows.c.txn_id
        actor = (
            sa.select(sa.func.min(entry.c.actor)).where(entry.c.txn_id == txn_id).scalar_subquery()
        )
        kind = rows.c.kind if table == 'points_txn' else sa.literal('redeem')
        found = conn.execute(
            sa.select(rows.c.id, rows.c.key, kind, actor).where(rows.c.key.is_not(None))
        ).all()
        updates = [
            {
                '_id': row_id,
                '_scope': scope_digest(operation or f'points.{kind_}', legacy_who(who), key),
            }
            for row_id, key, kind_, who in found
        ]
        if updates:
            conn.execute(
                rows.update()
                .where(rows.c.id == sa.bindparam('_id'))
                .values(key_scope=sa.bindparam('_scope')),
                updates,
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'uq_{table}_org_id_key_scope', type_='unique')
            batch_op.create_unique_constraint(
                batch_op.f(f'uq_{table}_org_id_key'), ['org_id', 'key']
            )
            batch_op.drop_column('key_fingerprint')
            batch_op.drop_column('key_scope')
