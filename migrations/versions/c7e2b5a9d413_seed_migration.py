"""moving from the seed's service: imported users and exchanged seed tokens (SPEC §12)

Revision ID: c7e2b5a9d413
Revises: c7e2a5b9d1f3
Create Date: 2026-11-25 16:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7e2b5a9d413'
down_revision = 'c7e2a5b9d1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('seed_users',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_seed_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_seed_users'))
    )
    op.create_table('seed_token_exchanges',
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('exchanged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_seed_token_exchanges_session_id_sessions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_seed_token_exchanges_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_digest', name=op.f('pk_seed_token_exchanges'))
    )
    with op.batch_alter_table('seed_token_exchanges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seed_token_exchanges_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('seed_token_exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seed_token_exchanges_user_id'))

    op.drop_table('seed_token_exchanges')
    op.drop_table('seed_users')
