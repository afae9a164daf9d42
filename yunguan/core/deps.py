"""Request-scoped dependencies shared by every router."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from yunguan.core.config import Settings
from yunguan.core.db import Database

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
    with get_db(request).session(write=request.method not in SAFE_METHODS) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
