from datetime import datetime

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
