"""export reminders: a friend waiting for a platform's download is mailed their link again

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.tables import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("friend") as batch_op:
        batch_op.add_column(sa.Column("export_asked_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("export_reminder_at", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("export_reminders_sent", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_friend_export_reminder_at", ["export_reminder_at"])


def downgrade() -> None:
    with op.batch_alter_table("friend") as batch_op:
        batch_op.drop_index("ix_friend_export_reminder_at")
        batch_op.drop_column("export_reminders_sent")
        batch_op.drop_column("export_reminder_at")
        batch_op.drop_column("export_asked_at")
