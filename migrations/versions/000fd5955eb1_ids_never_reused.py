"""ids are never reused: users, identities, auth events and outbox deliveries AUTOINCREMENT on SQLite

SQLite gives a new row the largest rowid + 1, so after the newest account was deleted the next
one got its id, and whatever named that id (another service's orders, an email-change link) then
meant the new account. With AUTOINCREMENT a new id is larger than every id the table ever held
(``sqlite_sequence``). These are the integer ids that leave the service: user ids (tokens, links,
other services), identity ids (``DELETE /auth/identities/<id>``), event ids (a webhook's
``evt_<id>``) and delivery ids (a mail's ``out_<id>``, ``/admin/deliveries/<id>``). PostgreSQL's
sequences never go back: nothing to do there.

SQLite cannot add AUTOINCREMENT to a table: each is rebuilt (a new table, the rows copied with
their ids, the old one dropped, the new one renamed). Foreign keys are off meanwhile, as SQLite's
own procedure for this says: with them on, dropping ``users`` runs its ON DELETE actions and
would empty every table that refers to it.

Revision ID: 000fd5955eb1
Revises: 5b2e8c1d9f04
Create Date: 2026-11-26 12:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '000fd5955eb1'
down_revision = '5b2e8c1d9f04'
branch_labels = None
depends_on = None

TABLES = ('users', 'identities', 'auth_events', 'outbox')


def _rebuild_sqlite_tables(autoincrement):
    """Rebuild ``TABLES`` with or without AUTOINCREMENT, foreign keys off, their rows and ids kept."""
    context = op.get_context()
    connection = op.get_bind()
    # SQLite ignores this pragma inside a transaction: it is set outside one.
    with context.autocommit_block():
        op.execute('PRAGMA foreign_keys=OFF')
    try:
        if connection.exec_driver_sql('PRAGMA foreign_keys').scalar() != 0:
            raise RuntimeError('SQLite foreign keys are still on: the rebuild would empty the tables')
        # Every rebuild in one transaction, all or nothing: the driver would begin one only at the
        # first INSERT, and commit the CREATE TABLE before it by itself.
        connection.exec_driver_sql('BEGIN')
        for table in TABLES:
            with op.batch_alter_table(
                table,
                recreate='always',
                table_kwargs={'sqlite_autoincrement': autoincrement},
                # The primary key's name, which the reflection of an AUTOINCREMENT table lacks.
                naming_convention={'pk': 'pk_%(table_name)s'},
            ):
                pass
    except BaseException:
        # Never hand the pool a connection with foreign keys off: it is closed, not reused.
        connection.invalidate()
        raise
    with context.autocommit_block():
        op.execute('PRAGMA foreign_keys=ON')


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_tables(autoincrement=True)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_tables(autoincrement=False)
