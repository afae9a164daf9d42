from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from yunguan.core.types import Identifier, Input, Name, Output, Text
from yunguan.providers.models import PROVIDER_KINDS, PROVIDER_STATES

Kind = Literal[PROVIDER_KINDS]  # type: ignore[valid-type]
State = Literal[PROVIDER_STATES]  # type: ignore[valid-type]
Settings = Annotated[dict[str, Any], Field(max_length=64)]


class ProviderCreate(Input):
    """``config`` and ``secret`` are the driver's own (see docs/providers.md); ``secret`` is
    stored encrypted and never shown again."""

    name: Name
    kind: Kind
    cluster_id: Identifier = Field(description="where the hosts the provider reports go")
    config: Settings = Field(default_factory=dict)
    secret: Settings = Field(default_factory=dict)
    description: Text = ""


class ProviderUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    state: State | None = None
    config: Settings | None = None
    secret: Settings | None = Field(None, description="replaces the stored credentials")


class ImportRequest(Input):
    external_id: Annotated[str, Field(min_length=1, max_length=255)]
    tenant_id: Identifier
    flavor_id: Identifier
    image_id: Identifier
    name: Name | None = None


class ProviderAction(Input):
    action: Literal["sync", "import"]
    machine: ImportRequest | None = Field(None, description="for import")


class ProviderOut(Output):
    id: str
    name: str
    kind: str
    zone_id: str
    cluster_id: str
    config: dict[str, Any]
    has_credentials: bool
    state: str
    description: str
    synced_at: datetime | None
    sync_error: str
    importable: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
