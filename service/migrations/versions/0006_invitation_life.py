"""invitation life: sealed links in stored mails, and accepted links that end when unused

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 17:30:00

- `outgoingmail.sealed_links`: mails keep a placeholder where a link with a token goes and the
  link sealed. Mails already sent or given up keep no body at all (nothing reads it again), so
  no token stays in clear from before; pending ones are sent as they are.
- An accepted friend's link used to live for ever; it now ends `link_idle_days` (180 by default)
  after its last use. Accepted friends start that time now, so no one is locked out by this.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from service.tables import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_IDLE = timedelta(days=180)


def upgrade() -> None:
    with op.batch_alter_table("outgoingmail") as batch_op:
        batch_op.add_column(sa.Column("sealed_links", sa.LargeBinary(), nullable=True))
    mail = sa.table("outgoingmail", sa.column("status"), sa.column("text"), sa.column("html"))
    op.execute(mail.update().where(mail.c.status.in_(("sent", "failed"))).values(text="", html=""))
    friend = sa.table("friend", sa.column("status"), sa.column("expires_at", UTCDateTime()))
    renewed = datetime.now(UTC) + LINK_IDLE
    op.execute(friend.update().where(friend.c.status == "accepted").values(expires_at=renewed))


def downgrade() -> None:
    with op.batch_alter_table("outgoingmail") as batch_op:
        batch_op.drop_column("sealed_links")
