"""refresh tokens keyed by (session_id, jti): a session's tokens together, no second index

A refresh consumes one token of a session and inserts its successor. Keyed by the session
first, both rows sit in one leaf of one B-tree: on SQLite the table itself (WITHOUT ROWID),
where a rowid table, its jti index and a (session_id, used_at) index were three; on
PostgreSQL ``used_at`` leaves every index, so the consuming UPDATE is a HOT update.

Revision ID: f1c3a7e5d920
Revises: e4a9c2f7b1d8
Create Date: 2026-11-25 21:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1c3a7e5d920'
down_revision = 'e4a9c2f7b1d8'
branch_labels = None
depends_on = None

COLUMNS = "jti, session_id, parent_jti, issued_at, expires_at, used_at"
OLD_INDEX = 'ix_refresh_tokens_session_id_used_at'


def _sqlite_rebuild(primary_key, with_rowid):
    """SQLite cannot change a primary key in place: a new table, the rows copied, renamed (the
    old table's indexes go with it). A rebuild that failed half-way can simply be run again."""
    op.execute("DROP TABLE IF EXISTS refresh_tokens_new")
    op.create_table(
        'refresh_tokens_new',
        sa.Column('jti', sa.String(length=36), nullable=False),
        sa.Column('session_id', sa.String(length=32), nullable=False),
        sa.Column('parent_jti', sa.String(length=36), nullable=True),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['session_id'], ['sessions.id'], name='fk_refresh_tokens_session_id_sessions', ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint(*primary_key, name='pk_refresh_tokens'),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(f"INSERT INTO refresh_tokens_new ({COLUMNS}) SELECT {COLUMNS} FROM refresh_tokens")
    op.drop_table('refresh_tokens')
    op.rename_table('refresh_tokens_new', 'refresh_tokens')


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_rebuild(('session_id', 'jti'), with_rowid=False)
        return
    op.drop_index(OLD_INDEX, table_name='refresh_tokens')
    op.drop_constraint('pk_refresh_tokens', 'refresh_tokens', type_='primary')
    op.create_primary_key('pk_refresh_tokens', 'refresh_tokens', ['session_id', 'jti'])


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_rebuild(('jti',), with_rowid=True)
    else:
        op.drop_constraint('pk_refresh_tokens', 'refresh_tokens', type_='primary')
        op.create_primary_key('pk_refresh_tokens', 'refresh_tokens', ['jti'])
    op.create_index(OLD_INDEX, 'refresh_tokens', ['session_id', 'used_at'], unique=False)
