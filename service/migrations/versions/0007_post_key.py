"""post key: the photos of one post share it, so the friend's checklist lists posts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 17:45:00

Matches found before this revision have no post key: each stays an item of its own, unless it
shares its post's URL with others (profile scans, X and Mastodon exports).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("match") as batch_op:
        batch_op.add_column(
            sa.Column("post_key", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("match") as batch_op:
        batch_op.drop_column("post_key")
