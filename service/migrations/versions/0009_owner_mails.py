"""owner mails: the mails an owner chose not to get

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("owner") as batch_op:
        batch_op.add_column(sa.Column("muted", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("owner") as batch_op:
        batch_op.drop_column("muted")
