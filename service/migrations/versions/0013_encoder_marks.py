"""encoder marks: which encoder made each sealed encoding (service/reencode.py)

Every encoding stored before this revision was made by dlib's ResNet: the engine's encoder until
SFace replaced it. They are marked "dlib", and made again by the engine's encoder, from the face
pictures the service kept, before a scan compares anything with them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("referenceface", "matchgroup", "match", "standbyface")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("encoder", AutoString(length=16), nullable=False, server_default="dlib"),
        )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("encoder")
