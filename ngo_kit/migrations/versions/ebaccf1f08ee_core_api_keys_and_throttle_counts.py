"""core_api_key and core_throttle: per-organisation API keys, and the counts that throttle them

``core_api_key`` holds each key's name, scopes, lookup id and the keyed hash of its secret
(never the secret); ``core_throttle`` counts calls per key and failed key attempts per client.

Revision ID: ebaccf1f08ee
Revises: 150203cea296
Create Date: 2026-12-08 00:03:49.680217
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ngo_kit.db

revision: str = 'ebaccf1f08ee'
down_revision: str | Sequence[str] | None = '150203cea296'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('core_throttle',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('window_started_at', ngo_kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_core_throttle'))
    )
    op.create_table('core_api_key',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('lookup', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=False),
    sa.Column('expires_at', ngo_kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', ngo_kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=40), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', ngo_kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['core_organisation.id'], name=op.f('fk_core_api_key_org_id_core_organisation'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_api_key')),
    sa.UniqueConstraint('org_id', 'lookup', name=op.f('uq_core_api_key_org_id_lookup'))
    )
    with op.batch_alter_table('core_api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_api_key_org_id'), ['org_id'], unique=False)



def downgrade() -> None:
    op.drop_table('core_api_key')
    op.drop_table('core_throttle')
