"""The audit trail: one append-only row per mutating call and per login attempt.

The request middleware opens an :class:`AuditNote` for each mutating request; the code that
handles the request fills in what only it knows (actor, target, owning tenant) with
:func:`note`, and the middleware writes the row once the response status is known, in a
transaction of its own so that failed calls are recorded too.
"""

from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.core.ids import new_id


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_tenant_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=now, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(40), index=True)
    actor_name: Mapped[str] = mapped_column(String(255), default="")
    actor_tenant_id: Mapped[str | None] = mapped_column(String(40))
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    tenant_path: Mapped[str | None] = mapped_column(String(2048), index=True)
    """The owning tenant's place in the tree when the event happened: its ancestors keep
    seeing the event after the tenant is moved away or deleted."""
    action: Mapped[str] = mapped_column(String(128), index=True)
    target_type: Mapped[str] = mapped_column(String(64), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    result: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    request_id: Mapped[str] = mapped_column(String(64), default="")
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


_LIMITS = {"action": 128, "actor_name": 255, "target_type": 64, "target_id": 64}


def _storable(text: str) -> str:
    """Control characters (a NUL in a refused URL, say) shown as U+FFFD: PostgreSQL text
    cannot hold NUL, and a log is no place for terminal escapes."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


@dataclass
class AuditNote:
    action: str = ""
    actor_id: str | None = None
    actor_name: str = ""
    actor_tenant_id: str | None = None
    tenant_id: str | None = None
    target_type: str = ""
    target_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    routine: bool = False
    """A machine's periodic report (an agent's status or learning): recorded only when it
    fails, or every heartbeat of every host would be an audit row."""


_current: ContextVar[AuditNote | None] = ContextVar("audit_note", default=None)


def open_note() -> AuditNote:
    audit_note = AuditNote()
    _current.set(audit_note)
    return audit_note


def note(**fields: Any) -> None:
    """Add facts to the audit record of the request being handled (no-op outside one)."""
    current = _current.get()
    if current is None:
        return
    detail = fields.pop("detail", None)
    for key, value in fields.items():
        setattr(current, key, value)
    if detail:
        current.detail.update(detail)


def record(
    session: Session,
    audit_note: AuditNote,
    *,
    result: str,
    status_code: int | None = None,
    request_id: str = "",
    source_ip: str = "",
) -> AuditEvent:
    fields = asdict(audit_note)
    del fields["routine"]
    for name, limit in _LIMITS.items():  # whatever a client sent, the row must fit
        fields[name] = _storable(fields[name])[:limit]
    if fields["tenant_id"]:
        tenants = Base.metadata.tables["tenants"]  # owned by identity; only its path is read
        fields["tenant_path"] = session.scalar(
            select(tenants.c.path).where(tenants.c.id == fields["tenant_id"])
        )
    event = AuditEvent(
        id=new_id("ae"),
        occurred_at=now(),
        result=result,
        status_code=status_code,
        request_id=request_id,
        source_ip=source_ip,
        **fields,
    )
    session.add(event)
    return event
