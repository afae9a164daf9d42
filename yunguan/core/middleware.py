"""ASGI middleware: request ids, input guards, access log and metrics, audit."""

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yunguan.core import audit
from yunguan.core.db import Database
from yunguan.core.errors import PROBLEM_MEDIA_TYPE, problem_body
from yunguan.core.metrics import observe_request

log = structlog.get_logger("yunguan.http")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


async def send_problem(send: Send, status: int, code: str, title: str, detail: str) -> None:
    body = problem_body(status, code, title, detail)
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def route_template(scope: Scope) -> str:
    """The matched route as a template (``/api/v1/tenants/{tenant_id}``), for metric labels.

    A route inside an included router knows only its own part of the path; the prefix is
    the leading segments of the concrete path that the template does not cover."""
    route_path = getattr(scope.get("route"), "path", None)
    if route_path is None:
        return "unmatched"
    segments = scope["path"].split("/")
    prefix_length = len(segments) - len(route_path.split("/")) + 1
    return "/".join(segments[:prefix_length]) + route_path


class RequestContextMiddleware:
    """Request id, access log and metrics for every request; answers 413 for a body that
    :class:`InputGuardMiddleware` found too large."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = header(scope, b"x-request-id")
        request_id = supplied if supplied and _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BodyTooLarge as exc:
            if status["started"]:
                raise
            await send_problem(
                send_with_id, 413, "payload-too-large", "Request body too large", exc.detail
            )
        finally:
            elapsed = time.perf_counter() - started
            observe_request(scope["method"], route_template(scope), status["code"], elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status["code"],
                ms=round(elapsed * 1000, 2),
            )


class InputGuardMiddleware:
    """Refuses control characters in the URL and bodies over ``max_body_bytes`` (declared
    or streamed) before any handler sees them."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        if _CONTROL.search(unquote_to_bytes(raw)) or _CONTROL.search(
            unquote_to_bytes(scope.get("query_string", b""))
        ):
            await send_problem(send, 400, "invalid-url", "Bad request", "control characters in URL")
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_problem(send, 400, "bad-request", "Bad request", "bad Content-Length")
                return
            if int(declared) > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        await self.app(scope, counting_receive, send)


class CallerAwareMiddleware:
    """Middleware that writes to the database and needs to know who is calling.

    ``subject_of`` returns the claims of the request's valid token (or None) without
    touching the database."""

    def __init__(
        self, app: ASGIApp, db: Database, subject_of: Callable[[Scope], dict[str, Any] | None]
    ) -> None:
        self.app = app
        self.db = db
        self.subject_of = subject_of


class AuditMiddleware(CallerAwareMiddleware):
    """Writes one audit event for every mutating request, whatever its outcome, before the
    response's last byte leaves: a client that has its answer can find the event."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        audit_note = audit.open_note()
        state = {"status": 500, "written": False}

        async def write() -> None:
            state["written"] = True
            await anyio.to_thread.run_sync(self._write, scope, audit_note, state["status"])

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await write()
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except HTTPException as exc:  # e.g. a body found too large while streaming
            state["status"] = exc.status_code
            raise
        finally:
            if not state["written"]:
                await write()

    def _write(self, scope: Scope, audit_note: audit.AuditNote, status_code: int) -> None:
        if audit_note.routine and status_code < 400:
            return
        if not audit_note.action:
            route = scope.get("route")
            audit_note.action = getattr(route, "name", None) or f"{scope['method']} {scope['path']}"
        if audit_note.actor_id is None and not audit_note.actor_name:
            subject = self.subject_of(scope)
            if subject:
                audit_note.actor_id = subject.get("sub")
                audit_note.actor_name = subject.get("name", "")
        client = scope.get("client")
        try:
            with self.db.session() as session:
                audit.record(
                    session,
                    audit_note,
                    result="success" if status_code < 400 else "failure",
                    status_code=status_code,
                    request_id=scope.get("state", {}).get("request_id", ""),
                    source_ip=client[0] if client else "",
                )
        except Exception:
            log.exception("audit write failed", action=audit_note.action)
