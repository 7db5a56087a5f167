"""volunteer keys scoped to the actor and the operation

Revision ID: 7c4e2a9d1f06
Revises: 893e2ae9678a
Create Date: 2026-12-07 21:40:00.000000

Sign-up and claim keys were unique per organisation: someone sending another person's key got
that person's sign-up back. Keys are now unique per (organisation, actor, operation, key),
stored as ``key_scope``, with the call's ``key_fingerprint``. Rows written before keep their
``key`` and get the scope of the volunteer they are for (who signs up and claims for
themselves) and no fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ngo_kit.idempotency import legacy_who, scope_digest

revision: str = '7c4e2a9d1f06'
down_revision: str | Sequence[str] | None = '893e2ae9678a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = {'volunteer_signup': 'volunteer.sign_up', 'volunteer_hours_claim': 'volunteer.claim_hours'}


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('key_scope', sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column('key_fingerprint', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    for table, operation in _TABLES.items():
        rows = sa.table(
            table,
            sa.column('id', sa.Uuid()),
            sa.column('user_id', sa.Uuid()),
            sa.column('key'),
            sa.column('key_scope'),
        )
        found = conn.execute(
            sa.select(rows.c.id, rows.c.user_id, rows.c.key).where(rows.c.key.is_not(None))
        ).all()
        updates = [
            {'_id': i, '_scope': scope_digest(operation, legacy_who(str(user)), key)}
            for i, user, key in found
        ]
        if updates:
            conn.execute(
                rows.update()
                .where(rows.c.id == sa.bindparam('_id'))
                .values(key_scope=sa.bindparam('_scope')),
                updates,
            )
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'uq_{table}_org_id_key', type_='unique')
            batch_op.create_unique_constraint(
                batch_op.f(f'uq_{table}_org_id_key_scope'), ['org_id', 'key_scope']
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'uq_{table}_org_id_key_scope', type_='unique')
            batch_op.create_unique_constraint(batch_op.f(f'uq_{table}_org_id_key'), ['org_id', 'key'])
            batch_op.drop_column('key_fingerprint')
            batch_op.drop_column('key_scope')
