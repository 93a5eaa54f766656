"""bounce events by address across accounts

The global-bounce check (``suppression.check_global``) counts one address's hard bounces in
every account after each hard bounce; without this index that was a scan of every event.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.create_index("ix_bounce_events_email", ["email", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.drop_index("ix_bounce_events_email")
