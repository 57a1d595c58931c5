"""standby faces: a photo's second face near the owner waits behind its match (service/standby.py)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "standbyface",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("box_key", AutoString(length=64), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.Column("band", AutoString(length=16), nullable=False),
        sa.Column("sealed_encoding", sa.LargeBinary(), nullable=False),
        sa.Column("owner_view", sa.LargeBinary(), nullable=True),
        sa.Column("owner_view_box", sa.JSON(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("stepped_in", sa.Integer(), nullable=True),
        sa.CheckConstraint("band IN ('strong', 'possible')", name="band_valid"),
        sa.ForeignKeyConstraint(["group_id"], ["matchgroup.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["match_id"], ["match.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["owner.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["stepped_in"], ["match.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("group_id", "match_id", "owner_id", "stepped_in"):
        op.create_index(f"ix_standbyface_{column}", "standbyface", [column])


def downgrade() -> None:
    op.drop_table("standbyface")
