"""states kept in range by CHECK constraints; the periodic table for one scheduler

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 14:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.tables
from service.states import (
    DECISIONS,
    Answer,
    Band,
    FriendStatus,
    MailStatus,
    Review,
    ScanStatus,
    SourceKind,
    TokenKind,
)
from service.tables import one_of

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIODIC = ("tick", "sweep")
FRIEND_STATES_0003 = ("invited", "accepted", "declined", "withdrawn")
# table -> the constraints its state columns get (the same ones service/tables.py declares)
CHECKS = {
    "logintoken": [one_of("kind", TokenKind)],
    # The friend states as they were then (0004 adds one): the same schema on every run.
    "friend": [one_of("status", [FriendStatus(s) for s in FRIEND_STATES_0003])],
    "source": [one_of("kind", SourceKind)],
    "scan": [one_of("status", ScanStatus)],
    "matchgroup": [one_of("decision", DECISIONS, nullable=True)],
    "match": [one_of("band", Band), one_of("review", Review), one_of("status", Answer)],
    "outgoingmail": [one_of("status", MailStatus)],
}


def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for check in checks:
                assert isinstance(check.name, str)
                batch_op.create_check_constraint(check.name, str(check.sqltext))
    op.create_table(
        "periodic",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("next_run_at", service.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The periodic work the consumers share (service/jobs.py); due at once.
    op.bulk_insert(
        sa.table(
            "periodic", sa.column("name"), sa.column("next_run_at", service.tables.UTCDateTime())
        ),
        [{"name": name, "next_run_at": datetime(2000, 1, 1, tzinfo=UTC)} for name in PERIODIC],
    )


def downgrade() -> None:
    op.drop_table("periodic")
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for check in checks:
                assert isinstance(check.name, str)
                batch_op.drop_constraint(check.name, type_="check")
