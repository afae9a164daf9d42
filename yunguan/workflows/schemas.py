from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from yunguan.core.types import Output


class OperationOut(Output):
    id: str
    kind: str
    tenant_id: str
    target_type: str
    target_id: str
    state: str
    step: str
    progress: int
    error: str
    requested_by: str | None
    created_at: datetime
    updated_at: datetime


T = TypeVar("T")


class Accepted(BaseModel, Generic[T]):
    """202 answer of a long operation: the resource in its transitional state and the
    operation to poll (also in the ``Location`` header)."""

    resource: T
    operation: OperationOut
