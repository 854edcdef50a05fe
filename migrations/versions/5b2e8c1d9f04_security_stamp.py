"""users.security_stamp: links and cookies that grant access are bound to the account's
security state (SPEC §13)

Every user gets a random stamp; it changes on a password change or reset, sign-out
everywhere, an email change, a second-factor change and when the owner of a never-verified
address claims the account. ``security_changed_at`` says when it last changed (NULL: never,
since the upgrade), so that the seed's cookies issued before can be refused. Links mailed
before the upgrade carry no stamp and stop working (they live hours at most). The way back
drops both columns.

Revision ID: 5b2e8c1d9f04
Revises: 8deee5d42faa
Create Date: 2026-12-07 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b2e8c1d9f04'
down_revision = '8deee5d42faa'
branch_labels = None
depends_on = None

# A random value per row, computed by the database (no row goes through Python).
RANDOM_STAMP = {
    "sqlite": "lower(hex(randomblob(16)))",
    "postgresql": "md5(random()::text || clock_timestamp()::text || id::text)",
}


def upgrade():
    # Plain ALTER TABLE on both databases, never a rebuild of users: on SQLite a rebuild drops the
    # table, and with foreign keys on that would empty every table that refers to it (sessions,
    # second factors, identities).
    # SQLite adds a NOT NULL column only with a default: '' until the UPDATE gives each row its
    # own stamp (the default stays on SQLite, unused: trikchi always writes a stamp).
    op.add_column(
        'users', sa.Column('security_stamp', sa.String(length=32), nullable=False, server_default='')
    )
    op.add_column('users', sa.Column('security_changed_at', sa.DateTime(timezone=True), nullable=True))
    dialect = op.get_bind().dialect.name
    op.execute(f"UPDATE users SET security_stamp = {RANDOM_STAMP[dialect]}")
    if dialect == 'postgresql':
        op.alter_column('users', 'security_stamp', server_default=None)


def downgrade():
    # SQLite drops a column in place (3.35 and later): no rebuild either way.
    for column in ('security_changed_at', 'security_stamp'):
        op.execute(f'ALTER TABLE users DROP COLUMN {column}')
