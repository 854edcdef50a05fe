"""auth_events: the method of an event as a column, and one index on (type, created_at, method)

``GET /admin/stats`` counts events of a few types per UTC day and method over a range of days
(``WHERE type IN (…) AND created_at >= …``). With the method in a column (``details["method"]``,
written by ``record_event``) and in the index, the count reads the index alone: no row, no JSON.
The index serves every lookup the index on ``type`` served (its leading column), so that one
goes and an event still writes two indexes beside the table, not three. Existing events get
their method from their details. Plain ADD COLUMN, UPDATE and CREATE/DROP INDEX on both
databases, no table rebuild; the way back drops the column and restores the index on ``type``.

Revision ID: d3a8f1c6b2e7
Revises: 3e8a6f2c9b17
Create Date: 2026-12-07 22:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd3a8f1c6b2e7'
down_revision = '3e8a6f2c9b17'
branch_labels = None
depends_on = None

# details["method"] when it is a string, as each database reads JSON.
METHOD_OF_DETAILS = {
    "sqlite": "CASE WHEN json_type(details, '$.method') = 'text' "
    "THEN substr(json_extract(details, '$.method'), 1, 40) END",
    "postgresql": "CASE WHEN json_typeof(details -> 'method') = 'string' "
    "THEN left(details ->> 'method', 40) END",
}


def upgrade():
    op.add_column('auth_events', sa.Column('method', sa.String(length=40), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        # json_typeof on a JSON null, a number or an array is fine; ->> only on objects.
        op.execute(
            f"UPDATE auth_events SET method = {METHOD_OF_DETAILS[dialect]} "
            "WHERE json_typeof(details) = 'object'"
        )
    else:
        op.execute(
            f"UPDATE auth_events SET method = {METHOD_OF_DETAILS[dialect]} "
            "WHERE json_valid(details) AND json_type(details) = 'object'"
        )
    op.create_index(
        'ix_auth_events_type_created_at_method', 'auth_events', ['type', 'created_at', 'method'], unique=False
    )
    op.drop_index('ix_auth_events_type', table_name='auth_events')


def downgrade():
    op.create_index('ix_auth_events_type', 'auth_events', ['type'], unique=False)
    op.drop_index('ix_auth_events_type_created_at_method', table_name='auth_events')
    # SQLite drops a column in place (3.35 and later): no rebuild.
    op.execute('ALTER TABLE auth_events DROP COLUMN method')
