"""Cursor pagination over id-ordered queries (ids sort by creation time)."""

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from yunguan.core.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


Pages = Annotated[PageParams, Depends(page_params)]


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise BadRequest("cursor is not one this server issued", code="invalid-cursor")
    if not isinstance(value, str) or not value.isprintable():
        raise BadRequest("cursor is not one this server issued", code="invalid-cursor")
    return value


def where_equal(stmt: Select[Any], model: Any, **filters: Any) -> Select[Any]:
    """Add ``column == value`` for every filter that was given (None means "any")."""
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(model, column) == value)
    return stmt


def paginate(
    session: Session, stmt: Select[Any], id_column: Any, params: PageParams, newest_first=False
) -> tuple[list[Any], str | None]:
    """Run ``stmt`` one page at a time; returns the rows and the cursor of the next page."""
    if params.cursor is not None:
        after = decode_cursor(params.cursor)
        stmt = stmt.where(id_column < after if newest_first else id_column > after)
    stmt = stmt.order_by(id_column.desc() if newest_first else id_column).limit(params.limit + 1)
    rows = list(session.scalars(stmt))
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
