"""a plain refresh is recorded on its session row (SPEC §4): rotation count, last IP and user agent

Revision ID: e4a9c2f7b1d8
Revises: b7e2d4f6a8c1
Create Date: 2026-11-25 18:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4a9c2f7b1d8'
down_revision = 'b7e2d4f6a8c1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rotation_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_ip', sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column('last_user_agent', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('last_user_agent')
        batch_op.drop_column('last_ip')
        batch_op.drop_column('rotation_count')
