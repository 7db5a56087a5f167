"""volunteer certificate numbers and the organisation's certificate images

Revision ID: b3d81f5e2a47
Revises: 7c4e2a9d1f06
Create Date: 2026-12-08 00:30:00.000000

Certificates get a number short enough to read aloud (``XK7F-9M2Q-4T``), unique in their
organisation; certificates issued before get one here, and their links keep verifying (the
signed token names the certificate's id, not its number). ``volunteer_certificate_image``
holds each organisation's logo and seal printed on its certificates.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import ngo_kit.db

revision: str = 'b3d81f5e2a47'
down_revision: str | Sequence[str] | None = '7c4e2a9d1f06'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _new_number() -> str:
    """A number as ``certificates.new_number`` makes them today (frozen here)."""
    raw = ''.join(secrets.choice('23456789ABCDEFGHJKMNPQRSTVWXYZ') for _ in range(10))
    return f'{raw[:4]}-{raw[4:8]}-{raw[8:]}'


def upgrade() -> None:
    with op.batch_alter_table('volunteer_certificate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.String(length=16), nullable=True))
    conn = op.get_bind()
    certificates = sa.table(
        'volunteer_certificate', sa.column('id', sa.Uuid()), sa.column('number')
    )
    ids = conn.execute(sa.select(certificates.c.id)).scalars().all()
    numbers: set[str] = set()
    while len(numbers) < len(ids):  # unique across the table, so unique in each organisation
        numbers.add(_new_number())
    if ids:
        conn.execute(
            certificates.update()
            .where(certificates.c.id == sa.bindparam('_id'))
            .values(number=sa.bindparam('_number')),
            [{'_id': i, '_number': n} for i, n in zip(ids, sorted(numbers), strict=True)],
        )
    with op.batch_alter_table('volunteer_certificate', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.String(length=16), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f('uq_volunteer_certificate_org_id_number'), ['org_id', 'number']
        )
    op.create_table(
        'volunteer_certificate_image',
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('media_type', sa.String(length=20), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column(
            'data',
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), 'mysql', 'mariadb'),
            nullable=False,
        ),
        sa.Column('uploaded_at', ngo_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('uploaded_by', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ['org_id'],
            ['core_organisation.id'],
            name=op.f('fk_volunteer_certificate_image_org_id_core_organisation'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('org_id', 'kind', name=op.f('pk_volunteer_certificate_image')),
    )
    with op.batch_alter_table('volunteer_certificate_image', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_volunteer_certificate_image_org_id'), ['org_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('volunteer_certificate_image', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volunteer_certificate_image_org_id'))
    op.drop_table('volunteer_certificate_image')
    with op.batch_alter_table('volunteer_certificate', schema=None) as batch_op:
        batch_op.drop_constraint('uq_volunteer_certificate_org_id_number', type_='unique')
        batch_op.drop_column('number')
