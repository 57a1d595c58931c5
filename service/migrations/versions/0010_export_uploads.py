"""export uploads: files a friend sends in resumable pieces (tus); sizes past 2 GB

An export's size was a 32-bit integer, which PostgreSQL refuses past 2 GiB: now 64 bits.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.tables

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str) -> sa.Column:
    return sa.Column(name, service.tables.UTCDateTime(timezone=True), nullable=False)


def _text(name: str, length: int | None = None) -> sa.Column:
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=False)


def upgrade() -> None:
    op.create_table(
        "exportupload",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("key", 64),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("friend_id", sa.Integer(), nullable=False),
        _text("filename", 200),
        sa.Column("length", sa.BigInteger(), nullable=False),
        _text("path"),
        _when("created_at"),
        _when("touched_at"),
        sa.ForeignKeyConstraint(["owner_id"], ["owner.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["friend_id"], ["friend.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_exportupload_owner_id", "exportupload", ["owner_id"])
    op.create_index("ix_exportupload_friend_id", "exportupload", ["friend_id"])
    with op.batch_alter_table("source") as batch_op:
        batch_op.alter_column("size_bytes", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("source") as batch_op:
        batch_op.alter_column("size_bytes", type_=sa.Integer(), existing_nullable=False)
    op.drop_table("exportupload")
