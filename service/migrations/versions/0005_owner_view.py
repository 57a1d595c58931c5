"""owner view: the owner sees their own face, the friend sees their own photo

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 12:00:00

Matches found before this revision keep their whole-photo thumbnail for the friend's checklist
and have no owner view: the owner sees no picture of them unless the friend shows whole photos.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("match") as batch_op:
        batch_op.add_column(sa.Column("owner_view", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("owner_view_box", sa.JSON(), nullable=True))
    with op.batch_alter_table("friend") as batch_op:
        batch_op.add_column(
            sa.Column("shows_whole_photos", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("friend") as batch_op:
        batch_op.drop_column("shows_whole_photos")
    with op.batch_alter_table("match") as batch_op:
        batch_op.drop_column("owner_view_box")
        batch_op.drop_column("owner_view")
