"""Operations: the progress record of each long-running workflow."""

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.db import get_database
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams, paginate, where_equal
from yunguan.identity.scope import Principal, get_visible, restrict
from yunguan.workflows.models import Operation

READ = "tenant:read"


def create_operation(
    session: Session,
    *,
    kind: str,
    tenant_id: str,
    target_type: str,
    target_id: str,
    requested_by: str | None,
    params: dict[str, Any] | None = None,
) -> Operation:
    """Record a long operation. ``engine.submit`` queues its workflow after the commit, and
    ``engine.launch`` resubmits any that a crash left unqueued."""
    operation = Operation(
        id=new_id("op"),
        kind=kind,
        tenant_id=tenant_id,
        target_type=target_type,
        target_id=target_id,
        requested_by=requested_by,
        params=params or {},
    )
    session.add(operation)
    session.flush()
    return operation


def advance(operation_id: str, session: Session | None = None, **fields: Any) -> None:
    """Record a workflow's progress: in the step's own transaction when it gives one (one
    commit fewer), else in a transaction of its own."""
    change = (
        update(Operation).where(Operation.id == operation_id).values(**fields, updated_at=now())
    )
    if session is not None:
        session.execute(change)
        return
    with get_database().session() as own:
        own.execute(change)


def load(operation_id: str) -> Operation | None:
    with get_database().session(write=False) as session:
        return session.get(Operation, operation_id)


def outcome(operation_ids: list[str]) -> tuple[bool, str]:
    """Whether every operation has ended, and the first failure's error."""
    with get_database().session(write=False) as session:
        rows = session.execute(
            select(Operation.state, Operation.error).where(Operation.id.in_(operation_ids))
        ).all()
    ended = all(state in ("succeeded", "failed") for state, _ in rows)
    failed = [error or "failed" for state, error in rows if state == "failed"]
    return ended, failed[0] if failed else ""


def pending_operations(target_ids: list[str] | None = None) -> list[tuple[str, str]]:
    """(id, kind) of the operations not started yet (of these targets only, if given)."""
    stmt = select(Operation.id, Operation.kind).where(Operation.state == "pending")
    if target_ids is not None:
        stmt = stmt.where(Operation.target_id.in_(target_ids))
    with get_database().session(write=False) as session:
        return [(op_id, kind) for op_id, kind in session.execute(stmt)]


def get_operation(session: Session, principal: Principal, operation_id: str) -> Operation:
    return get_visible(session, Operation, operation_id, principal, READ)


def list_operations(
    session: Session,
    principal: Principal,
    page: PageParams,
    target_id: str | None = None,
    state: str | None = None,
) -> tuple[list[Operation], str | None]:
    stmt = restrict(select(Operation), Operation, principal, READ)
    stmt = where_equal(stmt, Operation, target_id=target_id, state=state)
    return paginate(session, stmt, Operation.id, page, newest_first=True)
