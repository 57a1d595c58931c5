"""family circles: owners who ask the same friends together

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str) -> sa.Column:
    return sa.Column(name, service.tables.UTCDateTime(timezone=True), nullable=False)


def _text(name: str, length: int | None = None) -> sa.Column:
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=False)


def _fk(name: str, table: str) -> list[sa.Column | sa.ForeignKeyConstraint]:
    return [
        sa.Column(name, sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint([name], [f"{table}.id"], ondelete="CASCADE"),
    ]


def upgrade() -> None:
    op.create_table(
        "circle",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("name", 100),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "circlemember",
        sa.Column("id", sa.Integer(), nullable=False),
        *_fk("circle_id", "circle"),
        *_fk("owner_id", "owner"),
        _when("joined_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id"),  # one circle per owner
    )
    op.create_index("ix_circlemember_circle_id", "circlemember", ["circle_id"])
    op.create_table(
        "circleinvitation",
        sa.Column("id", sa.Integer(), nullable=False),
        *_fk("circle_id", "circle"),
        *_fk("inviter_id", "owner"),
        _text("email", 320),
        _text("token_hash"),
        _when("created_at"),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_circleinvitation_circle_id", "circleinvitation", ["circle_id"])
    op.create_index("ix_circleinvitation_inviter_id", "circleinvitation", ["inviter_id"])
    op.create_index(
        "ix_circleinvitation_token_hash", "circleinvitation", ["token_hash"], unique=True
    )


def downgrade() -> None:
    op.drop_table("circleinvitation")
    op.drop_table("circlemember")
    op.drop_table("circle")
