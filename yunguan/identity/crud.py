"""The five routes of a plain collection, for domains whose nouns all behave alike
(list with filters, create, read, update, delete), so each noun is one call, not five
copies of the same functions."""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession
from yunguan.core.errors import BadRequest
from yunguan.core.pagination import Page, Pages
from yunguan.identity.deps import CurrentPrincipal


def apply_changes(row: Any, data: BaseModel, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Set the fields a PATCH body gave (none of them may be null); returns them."""
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if k not in skip}
    for key, value in changes.items():
        if value is None:
            raise BadRequest(f"'{key}' cannot be null", code="invalid-field")
        setattr(row, key, value)
    return changes


@dataclass(frozen=True)
class Collection:
    """A noun's service functions and schemas."""

    noun: str  # singular, as in audit actions: "storage-pool"
    path: str  # the collection: "/storage-pools"
    out: type[BaseModel]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    list: Callable[..., tuple[list[Any], str | None]]
    create: Callable[..., Any] | None
    get: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., None] | None
    filters: Sequence[str] = ()


def _filter_params(names: Sequence[str]) -> Callable[..., dict[str, Any]]:
    def collect(**given: Any) -> dict[str, Any]:
        return given

    collect.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Filter)
            for n in names
        ]
    )
    return collect


def add_listing(
    router: APIRouter,
    noun: str,
    path: str,
    out: type[BaseModel],
    lister: Callable[..., tuple[list[Any], str | None]],
    filters: Sequence[str] = (),
    tag: str | None = None,
) -> None:
    """``GET path``: a page of ``out``, filtered by equality on ``filters``."""
    Filters = Annotated[dict[str, Any], Depends(_filter_params(filters))]

    @router.get(path, response_model=Page[out], tags=[tag or path.strip("/")], name=f"{noun}.list")  # type: ignore[valid-type]
    def list_items(session: DbSession, principal: CurrentPrincipal, page: Pages, filters: Filters):
        rows, cursor = lister(session, principal, page, **filters)
        return Page(items=[out.model_validate(r) for r in rows], next_cursor=cursor)


def add_collection(router: APIRouter, c: Collection) -> None:
    path, tag, name = c.path, c.path.strip("/"), c.noun
    member = f"{path}/{{item_id}}"
    Out, Create, Update = c.out, c.create_schema, c.update_schema
    writes = problem_responses(403, 409)
    add_listing(router, name, path, Out, c.list, c.filters)

    if c.create is not None:  # nouns made by a long operation define their own POST

        @router.post(
            path,
            response_model=Out,
            status_code=201,
            tags=[tag],
            name=f"{name}.create",
            responses=writes,
        )
        def create_item(session: DbSession, principal: CurrentPrincipal, body: Create):  # type: ignore[valid-type]
            return c.create(session, principal, body)  # type: ignore[misc]

    @router.get(member, response_model=Out, tags=[tag], name=f"{name}.get")
    def get_item(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
        return c.get(session, principal, item_id)

    @router.patch(member, response_model=Out, tags=[tag], name=f"{name}.update", responses=writes)
    def update_item(
        session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, body: Update
    ):  # type: ignore[valid-type]
        return c.update(session, principal, item_id, body)

    if c.delete is not None:  # ... and their own DELETE

        @router.delete(member, status_code=204, tags=[tag], name=f"{name}.delete", responses=writes)
        def delete_item(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
            c.delete(session, principal, item_id)  # type: ignore[misc]
            return Response(status_code=204)
