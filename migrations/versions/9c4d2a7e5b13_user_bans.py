"""users.banned_at, banned_until, ban_reason: staff ban accounts (SPEC §16)

An account is banned while ``banned_at`` is set and ``banned_until`` is NULL (until lifted) or
still ahead; a timed ban lifts by itself. ``ban_reason`` is for staff. Every existing account
starts unbanned (all three NULL). The way back drops the three columns (and so every ban).

Revision ID: 9c4d2a7e5b13
Revises: 000fd5955eb1
Create Date: 2026-12-07 22:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c4d2a7e5b13'
down_revision = '000fd5955eb1'
branch_labels = None
depends_on = None

COLUMNS = ('banned_at', 'banned_until', 'ban_reason')


def upgrade():
    # Plain ALTER TABLE on both databases, never a rebuild of users: on SQLite a rebuild drops the
    # table, and with foreign keys on that would empty every table that refers to it (sessions,
    # second factors, identities). Nullable columns without a default: no row is rewritten.
    op.add_column('users', sa.Column('banned_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('banned_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('ban_reason', sa.String(length=500), nullable=True))


def downgrade():
    # SQLite drops a column in place (3.35 and later): no rebuild either way.
    for column in reversed(COLUMNS):
        op.execute(f'ALTER TABLE users DROP COLUMN {column}')
