"""used Telegram payloads: a Telegram Login payload signs in once (SPEC §13)

Each accepted payload is remembered by the SHA-256 of its hash until it is too old to be
accepted anyway; the primary key is the claim. Nothing existing changes: the way back drops
the table (payloads then sign in again until they are stale, as before).

Revision ID: 8deee5d42faa
Revises: f1c3a7e5d920
Create Date: 2026-11-26 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8deee5d42faa'
down_revision = 'f1c3a7e5d920'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'used_telegram_payloads',
        sa.Column('hash_digest', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('hash_digest', name=op.f('pk_used_telegram_payloads')),
    )
    with op.batch_alter_table('used_telegram_payloads', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_used_telegram_payloads_expires_at'), ['expires_at'], unique=False
        )


def downgrade():
    with op.batch_alter_table('used_telegram_payloads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_telegram_payloads_expires_at'))
    op.drop_table('used_telegram_payloads')
