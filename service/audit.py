"""The audit trail: who did what, one row per event, visible to (and deleted with) the owner."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.tables import AuditEvent


def record(session: Session, owner_id: int, actor: str, action: str, **detail: Any) -> None:
    session.add(AuditEvent(owner_id=owner_id, actor=actor, action=action, detail=detail))
