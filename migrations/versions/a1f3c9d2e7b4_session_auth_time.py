"""sessions remember their last interactive authentication (SPEC §8 fresh sign-in)

Revision ID: a1f3c9d2e7b4
Revises: 0d424e190845
Create Date: 2026-11-25 16:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1f3c9d2e7b4'
down_revision = '0d424e190845'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_time', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('auth_method', sa.String(length=40), server_default='password', nullable=False)
        )
    # Existing sessions were opened by a password sign-in at their creation.
    op.execute("UPDATE sessions SET auth_time = created_at")
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.alter_column('auth_time', existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('auth_method')
        batch_op.drop_column('auth_time')
