from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from yunguan.catalog.models import TEMPLATE_KINDS, VERSION_STATES
from yunguan.catalog.parameters import Parameters
from yunguan.core.types import Amount, Identifier, Input, Money, Name, Output, Text, UtcTime

Kind = Literal[TEMPLATE_KINDS]  # type: ignore[valid-type]
Spec = Annotated[
    dict[str, Any],
    Field(description='what is ordered; {"param": "<name>"} anywhere refers to a parameter'),
]
TenantIds = Annotated[list[Identifier], Field(max_length=100)]
SortOrder = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class TemplateCreate(Input):
    """A template and its first version (a draft)."""

    name: Name
    kind: Kind
    description: Text = ""
    parameters: Parameters = Field(default_factory=list)
    spec: Spec = Field(default_factory=dict)


class TemplateUpdate(Input):
    name: Name | None = None
    description: Text | None = None


class TemplateOut(Output):
    id: str
    name: str
    kind: str
    description: str
    created_at: datetime
    updated_at: datetime


class VersionCreate(Input):
    """A new draft; what is not given is copied from the latest version."""

    parameters: Parameters | None = None
    spec: Spec | None = None


class VersionUpdate(VersionCreate):
    """A draft's change (any other state is immutable: make a new version)."""


class VersionAction(Input):
    """``submit`` (draft), ``approve`` or ``reject`` (in review; a rejection says why),
    ``offline`` (published), ``delete`` (draft or offline)."""

    action: Literal["submit", "approve", "reject", "offline", "delete"]
    comment: Text = ""

    @model_validator(mode="after")
    def _reasoned(self) -> "VersionAction":
        if self.action == "reject" and not self.comment.strip():
            raise ValueError("a rejection needs a comment")
        return self


class VersionOut(Output):
    id: str
    template_id: str
    version: int
    state: str
    parameters: list[dict[str, Any]]
    spec: dict[str, Any]
    submitted_by: str | None
    submitted_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_comment: str
    created_at: datetime
    updated_at: datetime


class CategoryCreate(Input):
    name: Name
    description: Text = ""
    sort_order: SortOrder = 0


class CategoryUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    sort_order: SortOrder | None = None


class CategoryOut(Output):
    id: str
    name: str
    description: str
    sort_order: int
    created_at: datetime


class ItemCreate(Input):
    name: Name
    description: Text = ""
    category_id: Identifier
    template_version_id: Identifier = Field(description="a published template version")
    price_monthly: Money = Field(
        Decimal(0), description="list price per month; an order's cost and approval use it"
    )
    tenant_ids: TenantIds = Field(
        default_factory=list,
        description="the tenant subtrees that see it; empty: every tenant",
    )


class ItemUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    category_id: Identifier | None = None
    template_version_id: Identifier | None = None
    price_monthly: Money | None = None
    tenant_ids: TenantIds | None = None


class ItemOut(Output):
    """An item with what an order form needs: its template's kind and parameters.
    ``tenant_ids`` is shown to platform administrators only."""

    id: str
    name: str
    description: str
    category_id: str
    template_version_id: str
    price_monthly: Amount
    template_id: str
    kind: str
    version: int
    parameters: list[dict[str, Any]]
    tenant_ids: list[str] = []
    created_at: datetime
    updated_at: datetime


# --- the YAML document of import/export ----------------------------------------------------


class CategoryDocument(CategoryCreate):
    id: Identifier


class VersionDocument(Input):
    id: Identifier
    version: Annotated[int, Field(ge=1, le=1_000_000)]
    state: Literal[VERSION_STATES]  # type: ignore[valid-type]
    parameters: Parameters = Field(default_factory=list)
    spec: Spec = Field(default_factory=dict)
    submitted_by: Identifier | None = None
    submitted_at: UtcTime | None = None
    reviewed_by: Identifier | None = None
    reviewed_at: UtcTime | None = None
    review_comment: Text = ""


class TemplateDocument(Input):
    id: Identifier
    name: Name
    kind: Kind
    description: Text = ""
    versions: Annotated[list[VersionDocument], Field(max_length=1000)] = []


class ItemDocument(ItemCreate):
    id: Identifier


class CatalogDocument(Input):
    """The whole catalog, ids kept: ``GET /catalog/export`` writes it, ``POST
    /catalog/import`` reads it."""

    categories: list[CategoryDocument] = []
    templates: list[TemplateDocument] = []
    items: list[ItemDocument] = []


class ImportSummary(Output):
    """How many of each the document held (present already or not)."""

    categories: int
    templates: int
    versions: int
    items: int
