"""owner trust: the admin, confirmed addresses, owner invitations, friends' reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.tables
from service.states import ReportStatus
from service.tables import one_of

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not taken from FriendStatus: a migration must build the same schema forever.
FRIEND_STATES = ("invited", "accepted", "declined", "withdrawn", "reported")
FRIEND_STATES_BEFORE = ("invited", "accepted", "declined", "withdrawn")
ONE_ADMIN = {"sqlite_where": sa.text("is_admin"), "postgresql_where": sa.text("is_admin")}


def _friend_check(states: tuple[str, ...]) -> str:
    return "status IN ({})".format(", ".join(f"'{s}'" for s in states))


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, service.tables.UTCDateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int | None = None) -> sa.Column:
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=False)


def _owner_fk(name: str) -> list[sa.Column | sa.ForeignKeyConstraint]:
    return [
        sa.Column(name, sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint([name], ["owner.id"], ondelete="CASCADE"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("owner") as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(_when("confirmed_at"))
        batch_op.add_column(_when("frozen_at"))
        batch_op.create_index("ix_owner_one_admin", ["is_admin"], unique=True, **ONE_ADMIN)
    # The instance's admin is its first account; addresses stay unconfirmed until their owners
    # open a link (the dashboard sends one), since nobody ever confirmed them.
    op.execute("UPDATE owner SET is_admin = true WHERE id = (SELECT min(id) FROM owner)")
    with op.batch_alter_table("friend") as batch_op:
        batch_op.drop_constraint("status_valid", type_="check")
        batch_op.create_check_constraint("status_valid", _friend_check(FRIEND_STATES))

    op.create_table(
        "confirmationtoken",
        sa.Column("id", sa.Integer(), nullable=False),
        *_owner_fk("owner_id"),
        _text("email", 320),
        _text("token_hash"),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_confirmationtoken_owner_id", "confirmationtoken", ["owner_id"])
    op.create_index(
        "ix_confirmationtoken_token_hash", "confirmationtoken", ["token_hash"], unique=True
    )

    op.create_table(
        "ownerinvitation",
        sa.Column("id", sa.Integer(), nullable=False),
        *_owner_fk("inviter_id"),
        _text("email", 320),
        _text("token_hash"),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("used_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ownerinvitation_email", "ownerinvitation", ["email"])
    op.create_index("ix_ownerinvitation_inviter_id", "ownerinvitation", ["inviter_id"])
    op.create_index("ix_ownerinvitation_token_hash", "ownerinvitation", ["token_hash"], unique=True)

    status = one_of("status", ReportStatus)
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        *_owner_fk("owner_id"),
        _text("friend_name", 200),
        _text("friend_email", 320),
        _text("reason", 1000),
        _text("status", 16),
        _when("created_at", nullable=False),
        _when("decided_at"),
        sa.CheckConstraint(str(status.sqltext), name=status.name),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_owner_id", "report", ["owner_id"])
    op.create_index("ix_report_status", "report", ["status"])


def downgrade() -> None:
    op.drop_table("report")
    op.drop_table("ownerinvitation")
    op.drop_table("confirmationtoken")
    op.execute("UPDATE friend SET status = 'withdrawn' WHERE status = 'reported'")
    with op.batch_alter_table("friend") as batch_op:
        batch_op.drop_constraint("status_valid", type_="check")
        batch_op.create_check_constraint("status_valid", _friend_check(FRIEND_STATES_BEFORE))
    with op.batch_alter_table("owner") as batch_op:
        batch_op.drop_index("ix_owner_one_admin", **ONE_ADMIN)
        batch_op.drop_column("frozen_at")
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("is_admin")
