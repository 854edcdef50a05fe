"""phone numbers and SMS codes (SPEC §14): users.phone, users.phone_verified, phone_codes

``users.phone`` is E.164 (at most 15 digits and the +), unique; ``phone_verified`` says the number
was proven by a code. ``phone_codes`` holds the pending codes by their keyed digest. The way back
drops them: an account that had only its number to sign in keeps its row and id (other services
store them), with no way to sign in until the upgrade is made again and the number proven anew.

Revision ID: 3f6a2c8e1b57
Revises: 9c4d2a7e5b13
Create Date: 2026-12-07 22:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3f6a2c8e1b57'
down_revision = '9c4d2a7e5b13'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE on both databases, never a rebuild of users: on SQLite a rebuild drops the
    # table, and with foreign keys on that would empty every table that refers to it (see
    # 5b2e8c1d9f04). The uniqueness of a number is a unique index, which SQLite creates in place.
    op.add_column('users', sa.Column('phone', sa.String(length=16), nullable=True))
    op.add_column(
        'users', sa.Column('phone_verified', sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index(op.f('ix_users_phone'), 'users', ['phone'], unique=True)
    op.create_table(
        'phone_codes',
        sa.Column('slot', sa.String(length=40), nullable=False),
        sa.Column('phone', sa.String(length=16), nullable=False),
        sa.Column('purpose', sa.String(length=10), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_phone_codes_user_id_users'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('slot', name=op.f('pk_phone_codes')),
    )
    op.create_index(op.f('ix_phone_codes_user_id'), 'phone_codes', ['user_id'], unique=False)
    op.create_index(op.f('ix_phone_codes_expires_at'), 'phone_codes', ['expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_phone_codes_expires_at'), table_name='phone_codes')
    op.drop_index(op.f('ix_phone_codes_user_id'), table_name='phone_codes')
    op.drop_table('phone_codes')
    # SQLite drops a column in place (3.35 and later), once no index names it: no rebuild either way.
    op.drop_index(op.f('ix_users_phone'), table_name='users')
    for column in ('phone_verified', 'phone'):
        op.execute(f'ALTER TABLE users DROP COLUMN {column}')
