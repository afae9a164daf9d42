"""Metering: usage events in (once each; a differing copy is quarantined), usage intervals out.

Events are the truth and never change. A resource's usage intervals per meter are derived
from them by one set-based query: a ``start`` opens an interval unless one is open, a ``stop``
closes the open one, an ``end`` closes it for good (nothing after it counts).
"""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from yunguan.billing.models import UsageEvent, UsageQuarantine
from yunguan.core.clock import now
from yunguan.core.db import UTCDateTime, chunked, copy_rows, insert_into
from yunguan.core.errors import Conflict
from yunguan.core.ids import new_id

BODY = ("tenant_id", "resource_type", "resource_id", "meter", "action", "price_key")


def body_hash(event: dict[str, Any]) -> str:
    """A digest of what an event says, its time aside (that is compared on its own)."""
    body = {key: event[key] for key in BODY}
    body["quantity"] = str(Decimal(event["quantity"]).normalize())
    body["attributes"] = event["attributes"]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def row_of(event: dict[str, Any]) -> dict[str, Any]:
    """The ``usage_events`` row of a validated event (quantity, price key and attributes
    defaulted, the time in whole epoch seconds, the digest)."""
    occurred_at: datetime = event.get("occurred_at") or now()
    row = {
        "id": new_id("ue"),
        "quantity": Decimal(1),
        "price_key": "",
        "attributes": {},
        **event,
        "occurred_at": occurred_at,
        "at_s": int(occurred_at.timestamp() // 1),
    }
    row["body_hash"] = body_hash(row)
    return row


@dataclass
class Ingested:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0


def ingest(session: Session, events: list[dict[str, Any]]) -> Ingested:
    """Record a batch: each ``(source, event_id)`` once (the first copy in the batch wins);
    a copy that differs from the recorded one in body or time goes to quarantine."""
    result = Ingested(received=len(events))
    first: dict[tuple[str, str], dict[str, Any]] = {}
    rows = []
    for event in events:
        row = row_of(event)
        rows.append(row)
        first.setdefault((row["source"], row["event_id"]), row)
    if not rows:
        return result
    # in time order (the batch's order within an instant: a stop before the start that
    # follows it), so concurrent writers of the same events mostly take locks alike
    new = sorted(first.values(), key=lambda row: row["occurred_at"])
    writing(session)
    inserted = _copy_new(session, new) if len(new) >= COPY_FROM else _insert_new(session, new)
    result.inserted = len(inserted)
    others = [row for row in rows if first[(row["source"], row["event_id"])] is not row]
    others += [row for key, row in first.items() if key not in inserted]
    conflicts = _conflicting(session, others)
    if conflicts:
        stored = insert_into(session, UsageQuarantine).on_conflict_do_nothing()
        session.execute(stored, conflicts)
    result.quarantined = len(conflicts)
    result.duplicates = result.received - result.inserted - result.quarantined
    return result


COPY_FROM = 200
"""Batches this large go to PostgreSQL by COPY: a multi-row INSERT's parameters cost more
to prepare than the rows cost to write."""

STAGED = (
    "id",
    *BODY,
    "quantity",
    "attributes",
    "occurred_at",
    "at_s",
    "body_hash",
    "source",
    "event_id",
)
_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS usage_stage (id VARCHAR(40), tenant_id VARCHAR(40),"
    " resource_type VARCHAR(32), resource_id VARCHAR(40), meter VARCHAR(64),"
    " action VARCHAR(16), price_key VARCHAR(64), quantity NUMERIC(28, 10), attributes JSON,"
    " occurred_at TIMESTAMPTZ, at_s BIGINT, body_hash VARCHAR(32), source VARCHAR(32),"
    " event_id VARCHAR(128), ord INTEGER) ON COMMIT DELETE ROWS"
)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Insert the rows whose ``(source, event_id)`` is new; those keys."""
    statement = insert_into(session, UsageEvent).on_conflict_do_nothing()
    returning = statement.returning(UsageEvent.source, UsageEvent.event_id)
    return set(session.execute(returning, rows).tuples())


def _copy_new(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """As ``_insert_new``, through a staging table filled by COPY (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return _insert_new(session, rows)
    session.execute(text(_STAGE))
    staged = (
        (*[json.dumps(row[c]) if c == "attributes" else row[c] for c in STAGED], n)
        for n, row in enumerate(rows)
    )
    cursor = copy_rows(session, "usage_stage", (*STAGED, "ord"), staged)
    columns = ", ".join(STAGED)
    cursor.execute(
        f"INSERT INTO usage_events ({columns}) SELECT {columns} FROM usage_stage ORDER BY ord"
        " ON CONFLICT DO NOTHING RETURNING source, event_id"
    )
    inserted = {(source, event_id) for source, event_id in cursor.fetchall()}
    cursor.execute("DELETE FROM usage_stage")
    return inserted


WATERMARK_KEY = 7_146_101
"""The advisory lock (PostgreSQL) that writers of usage events share and ``watermark`` takes
alone for an instant."""


def writing(session: Session) -> None:
    """This transaction inserts usage events: a ``watermark`` waits for it to end. Taken
    before the first insert (before a ``seq`` is drawn), held until commit or rollback."""
    if session.get_bind().dialect.name == "postgresql":
        statement = text("SELECT pg_advisory_xact_lock_shared(:key)")
        session.execute(statement, {"key": WATERMARK_KEY})


def watermark(session: Session) -> int:
    """The highest ``seq`` recorded, such that no event with a lower one can still appear:
    what a rating has seen, and what only a later event (``seq`` above it) can change.

    A ``seq`` is drawn when its row is inserted, not when it commits, so on PostgreSQL a
    transaction still in flight may hold a lower ``seq`` than a later one that committed;
    the plain maximum would pass over its events for good. Every inserting transaction
    holds ``WATERMARK_KEY`` shared (``writing``) from before its first insert; this takes the
    key exclusively, so it waits for those in flight to commit or roll back (and new ones
    wait for it), reads the maximum in a statement of its own (under READ COMMITTED it sees
    all of them), and lets go at once, not at the end of a long billing run. A writer that
    comes later draws a higher ``seq``. SQLite needs none of this: one writer at a time."""
    connection = session.connection()
    last = select(func.max(UsageEvent.seq))
    if connection.dialect.name != "postgresql":
        return connection.scalar(last) or 0
    key = {"key": WATERMARK_KEY}
    connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
    try:
        seq = connection.scalar(last) or 0
    except BaseException:
        connection.invalidate()  # a failed transaction cannot unlock; closing it does
        raise
    connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    return seq


def record(session: Session, **event: Any) -> None:
    """Record one event in the caller's transaction (lifecycle code, beside the change it
    meters): ``source, event_id, tenant_id, resource_type, resource_id, meter, action`` and
    optionally ``quantity, price_key, attributes, occurred_at``."""
    ingest(session, [event])


def _conflicting(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The quarantine rows for those of ``rows`` that differ from the recorded event."""
    if not rows:
        return []
    by_source: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_source[row["source"]].add(row["event_id"])
    stored: dict[tuple[str, str], tuple[str, datetime]] = {}
    for source, event_ids in by_source.items():
        for chunk in chunked(sorted(event_ids)):
            stmt = select(UsageEvent.event_id, UsageEvent.body_hash, UsageEvent.occurred_at).where(
                UsageEvent.source == source, UsageEvent.event_id.in_(chunk)
            )
            for event_id, digest, at in session.execute(stmt):
                stored[(source, event_id)] = (digest, at)
    conflicts: dict[tuple[str, str, str, datetime], dict[str, Any]] = {}
    for row in rows:
        key = (row["source"], row["event_id"])
        if key in stored and stored[key] != (row["body_hash"], row["occurred_at"]):
            payload = {k: v for k, v in row.items() if k not in ("id", "at_s", "body_hash")}
            conflicts.setdefault(
                (*key, row["body_hash"], row["occurred_at"]),
                {
                    "id": new_id("uq"),
                    "source": row["source"],
                    "event_id": row["event_id"],
                    "tenant_id": row["tenant_id"],
                    "body_hash": row["body_hash"],
                    "occurred_at": row["occurred_at"],
                    "payload": json.loads(json.dumps(payload, default=str)),
                    "received_at": now(),
                },
            )
    return list(conflicts.values())


def resolve(session: Session, held: UsageQuarantine, accept: bool) -> UsageQuarantine:
    """Settle a quarantined copy: discard it, or accept it in place of the recorded event
    (which goes, the copy taking a new ``seq``, so ratings of a finalized month see late
    usage and correct it)."""
    if held.state != "held":
        raise Conflict(f"{held.id} was {held.state} already", code="quarantine-resolved")
    held.state, held.resolved_at = ("accepted" if accept else "discarded"), now()
    if accept:
        writing(session)
        recorded = session.scalars(
            select(UsageEvent).where(
                UsageEvent.source == held.source, UsageEvent.event_id == held.event_id
            )
        ).one()
        recorded.event_id = f"replaced-by:{held.id}"  # out of the way, until it goes
        session.flush()
        event = {**held.payload, "occurred_at": held.occurred_at}
        event["quantity"] = Decimal(event["quantity"])
        session.execute(insert_into(session, UsageEvent), [row_of(event)])  # seq above it
        session.delete(recorded)
    return held


# --- intervals ---

INTERVAL_ACTIONS = ("start", "stop", "end")


def intervals(until_s: int, *where: Any) -> Any:
    """A subquery of usage intervals from events before ``until_s`` (epoch seconds), one row
    per effective start: ``tenant_id, resource_type, resource_id, meter, price_key, quantity,
    started_at, start_s, ended_at, end_s`` (the end columns NULL while open). ``where`` narrows
    the events (whole keys only: a tenant, a resource)."""
    e = UsageEvent
    window = {"partition_by": (e.resource_id, e.meter), "order_by": (e.occurred_at, e.seq)}
    marked = (
        select(
            e.tenant_id,
            e.resource_type,
            e.resource_id,
            e.meter,
            e.price_key,
            e.quantity,
            e.action,
            e.occurred_at,
            e.at_s,
            e.seq,
            func.lag(e.action).over(**window).label("prev"),
            func.sum(case((e.action == "end", 1), else_=0))
            .over(rows=(None, -1), **window)
            .label("ended"),
        )
        .where(e.action.in_(INTERVAL_ACTIONS), e.at_s < until_s, *where)
        .subquery()
    )
    # after any event the interval is open exactly when that event is a start, so an event
    # changes something when it differs from the one before it (a start after a start, or a
    # stop after a stop or an end, changes nothing)
    effective = (
        select(marked)
        .where(
            func.coalesce(marked.c.ended, 0) == 0,
            or_(
                and_(marked.c.action == "start", func.coalesce(marked.c.prev, "") != "start"),
                and_(marked.c.action != "start", marked.c.prev == "start"),
            ),
        )
        .subquery()
    )
    following = {"partition_by": (effective.c.resource_id, effective.c.meter)}
    following["order_by"] = (effective.c.occurred_at, effective.c.seq)
    paired = select(
        effective.c.tenant_id,
        effective.c.resource_type,
        effective.c.resource_id,
        effective.c.meter,
        effective.c.price_key,
        effective.c.quantity,
        effective.c.action,
        effective.c.occurred_at.label("started_at"),
        effective.c.at_s.label("start_s"),
        func.lead(effective.c.occurred_at, type_=UTCDateTime()).over(**following).label("ended_at"),
        func.lead(effective.c.at_s).over(**following).label("end_s"),
    ).subquery()
    return select(paired).where(paired.c.action == "start").subquery()


def resource_intervals(session: Session, resource_id: str) -> list[Any]:
    """A resource's intervals, oldest first (open ones up to now)."""
    iv = intervals(int(now().timestamp()) + 1, UsageEvent.resource_id == resource_id)
    return list(session.execute(select(iv).order_by(iv.c.meter, iv.c.started_at)))
