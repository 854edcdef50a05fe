"""social sign-in (SPEC §9): identities; users.password_hash and users.email become optional

Revision ID: c7d2e9a41b30
Revises: bd34970a0a29
Create Date: 2026-11-25 16:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d2e9a41b30'
down_revision = 'bd34970a0a29'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'identities',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_identities_user_id_users'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
        sa.UniqueConstraint('provider', 'subject', name='uq_identities_provider_subject'),
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identities_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=True)
        batch_op.alter_column('password_hash', existing_type=sa.String(length=255), nullable=True)


def downgrade():
    # The older schema needs both: accounts made by social sign-in keep their rows (and ids,
    # which other services store) with a hash no password matches ("!" is not an argon2 hash)
    # and an address that cannot receive mail (.invalid, RFC 2606).
    op.execute("UPDATE users SET password_hash = '!' WHERE password_hash IS NULL")
    op.execute("UPDATE users SET email = 'user-' || id || '@social.invalid' WHERE email IS NULL")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('password_hash', existing_type=sa.String(length=255), nullable=False)
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=False)
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identities_user_id'))
    op.drop_table('identities')
