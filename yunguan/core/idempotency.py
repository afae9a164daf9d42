"""``Idempotency-Key`` on POST: a retried request gets the first request's response.

Keys are scoped to the caller (the token's subject), expire after a day, and are bound to
the request they first came with: the same key with a different body is refused.
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import LargeBinary, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import Message, Receive, Scope, Send

from yunguan.core import audit
from yunguan.core.clock import now
from yunguan.core.db import Base
from yunguan.core.middleware import CallerAwareMiddleware, header, send_problem

KEY_TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=5)
# Answers a retry should not get again: authentication, rate limits, and conflicts, which
# changed nothing and may resolve (e.g. "concurrent-update, try again").
NOT_STORED = frozenset({401, 409, 429})


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    status_code: Mapped[int | None]
    media_type: Mapped[str] = mapped_column(String(128), default="")
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=now, index=True)


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= 255 and key.isascii() and key.isprintable()


class IdempotencyMiddleware(CallerAwareMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not _valid_key(key):
            await send_problem(
                send,
                400,
                "invalid-idempotency-key",
                "Bad request",
                "Idempotency-Key must be 1-255 printable ASCII characters",
            )
            return
        body = await _read_body(receive)
        subject = self.subject_of(scope) or {}
        record_key = hashlib.sha256(f"{subject.get('sub', '-')}\n{key}".encode()).hexdigest()
        request_hash = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()
        claim = await anyio.to_thread.run_sync(self._claim, record_key, request_hash)
        if isinstance(claim, IdempotencyRecord):
            audit.note(detail={"idempotent_replay": True})
            await _replay(send, claim)
            return
        if claim == "reused":
            await send_problem(
                send,
                422,
                "idempotency-key-reused",
                "Unprocessable request",
                "this Idempotency-Key was used with a different request",
            )
            return
        if claim == "in-progress":
            await send_problem(
                send,
                409,
                "idempotency-in-progress",
                "Conflict",
                "a request with this Idempotency-Key is still being processed",
            )
            return
        captured: dict[str, Any] = {"status": 500, "media_type": "", "body": b""}

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"content-type":
                        captured["media_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            await anyio.to_thread.run_sync(self._settle, record_key, captured)

    def _claim(self, record_key: str, request_hash: str) -> IdempotencyRecord | str:
        current = now()
        with self.db.session() as session:
            session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.created_at < current - KEY_TTL)
            )
            existing = session.get(IdempotencyRecord, record_key)
            if existing is not None:
                if existing.request_hash != request_hash:
                    return "reused"
                if existing.state == "done":
                    return existing
                if current - existing.created_at < ABANDONED_AFTER:
                    return "in-progress"
                session.delete(existing)
                session.flush()
        try:
            with self.db.session() as session:
                session.add(IdempotencyRecord(key=record_key, request_hash=request_hash))
        except IntegrityError:
            return "in-progress"
        return "claimed"

    def _settle(self, record_key: str, captured: dict[str, Any]) -> None:
        with self.db.session() as session:
            record = session.get(IdempotencyRecord, record_key)
            if record is None:
                return
            if captured["status"] >= 500 or captured["status"] in NOT_STORED:
                session.delete(record)
                return
            record.state = "done"
            record.status_code = captured["status"]
            record.media_type = captured["media_type"]
            record.body = captured["body"]


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _replay(send: Send, record: IdempotencyRecord) -> None:
    body = record.body or b""
    headers = [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    if record.media_type:
        headers.append((b"content-type", record.media_type.encode()))
    await send({"type": "http.response.start", "status": record.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
