"""RFC 9457 problem+json errors with stable codes."""

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("yunguan.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://yunguan.dev/problems/"


class Problem(Exception):
    """An error the client can act on. ``code`` is stable; ``detail`` is for humans."""

    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.extra = extra


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Authentication required"


class PaymentRequired(Problem):
    status, code, title = 402, "payment-required", "Payment required"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, code, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(Problem):
    """Well-formed input whose content is wrong; ``errors`` lists each fault as
    ``{"loc": [...], "msg": ..., "type": ...}``, as request validation does."""

    status, code, title = 422, "validation-error", "Invalid request"


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors as problem+json lists them."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
        for e in errors
    ]


def summary(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)[:2000]


class UnsupportedMediaType(Problem):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class BadGateway(Problem):
    """A provider (cloud, hypervisor, BMC) behind the platform failed to answer."""

    status, code, title = 502, "provider-error", "Provider error"


class Locked(Problem):
    status, code, title = 423, "account-locked", "Account locked"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload-too-large", "Request body too large"


def problem_body(
    status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "code": code}
    body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    status: int, code: str, title: str, detail: str, request: Request | None = None, **extra: Any
) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem_body(status, code, title, detail, instance, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )


_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


CONTENTION = ("40P01", "40001")
"""SQLSTATEs of a transaction the database gave up for another: deadlock_detected,
serialization_failure. Retried as a whole, the request may well succeed."""

DATABASE_ERRORS = (DBAPIError, psycopg.Error, sqlite3.Error)
"""SQLAlchemy's wrapped errors, and the drivers' own (code that works on the driver's
cursor, as COPY does, gets them unwrapped)."""


def _is_contention(exc: Exception) -> bool:
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    if getattr(error, "sqlstate", None) in CONTENTION:
        return True
    return isinstance(error, sqlite3.OperationalError) and "database is locked" in str(error)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = problem_response(
            exc.status, exc.code, exc.title, exc.detail, request, **exc.extra
        )
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        malformed = any(e["type"] == "json_invalid" for e in errors)
        code, title = (
            ("malformed-json", "Malformed JSON body")
            if malformed
            else ("validation-error", "Invalid request")
        )
        return problem_response(
            400 if malformed else 422,
            code,
            title,
            summary(errors),
            request,
            errors=errors,
        )

    async def _contention(request: Request, exc: Exception) -> JSONResponse:
        """Lock contention (a deadlock, a serialization failure, SQLite still locked) is
        the client's to retry: nothing was written. Anything else goes on to the app's
        handler of the unexpected (a 500, logged)."""
        if not _is_contention(exc):
            raise exc
        log.info("database contention", path=request.url.path, error=str(exc).splitlines()[0])
        return problem_response(
            409,
            "concurrent-update",
            "Conflict",
            "another request changed the same data at the same time; retry the request",
            request,
        )

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _contention)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
        response = problem_response(exc.status_code, code, title, str(exc.detail), request)
        if exc.headers:
            response.headers.update(exc.headers)
        return response
