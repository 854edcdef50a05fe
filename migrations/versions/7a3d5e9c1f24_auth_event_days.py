"""auth_event_days: the roll-up of the audit log's counts per closed UTC day

``GET /admin/stats`` counts a past UTC day once and keeps its counts here (sign-ins of a method by
result, registrations, SMS codes sent, and a row marking the day as rolled up); it counts live
only the days still open. A new, empty table: it fills itself on the first stats request, or by
``flask stats rollup``. The way back drops it (its counts can be computed again from the events).

Revision ID: 7a3d5e9c1f24
Revises: d3a8f1c6b2e7
Create Date: 2026-12-07 23:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a3d5e9c1f24'
down_revision = 'd3a8f1c6b2e7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'auth_event_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('method', sa.String(length=40), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'kind', 'method'),
    )


def downgrade():
    op.drop_table('auth_event_days')
