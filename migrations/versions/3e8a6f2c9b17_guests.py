"""guests: an index on users (role, created_at), for pruning idle guests and counting them apart

Guests (SPEC §15) are users of role ``guest``; ``flask users prune-guests`` finds the old ones
by role and age, and the admin user list counts them. Plain CREATE INDEX on both databases (never
a rebuild of users: on SQLite that would run the ON DELETE actions of every table referring to
it); the way back drops it.

Revision ID: 3e8a6f2c9b17
Revises: 3f6a2c8e1b57
Create Date: 2026-12-07 23:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3e8a6f2c9b17'
down_revision = '3f6a2c8e1b57'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_users_role_created_at', 'users', ['role', 'created_at'], unique=False)


def downgrade():
    op.drop_index('ix_users_role_created_at', table_name='users')
