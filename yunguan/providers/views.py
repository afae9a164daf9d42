"""Portal pages of providers (platform administrators): each provider's state and how fresh
its inventory is, registration, "sync now", and the import of machines made elsewhere."""

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.compute import service as compute
from yunguan.core.clock import now
from yunguan.core.errors import BadRequest
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.inventory import service as inventory
from yunguan.providers import service
from yunguan.providers.models import PROVIDER_KINDS, Provider
from yunguan.providers.schemas import ImportRequest, ProviderCreate
from yunguan.web.portal import (
    ALL,
    FormText,
    Panel,
    ago,
    latest_operation,
    page,
    page_principal,
    panel,
    submit,
    submit_work,
)
from yunguan.workflows.models import Operation

router = APIRouter(include_in_schema=False)
JsonText = Annotated[str, Form(max_length=16000)]


# --- freshness -----------------------------------------------------------------------------


def freshness(provider: Provider, sync_minutes: int) -> dict[str, Any]:
    """When the provider's inventory was last collected; stale after two missed syncs."""
    if provider.synced_at is None:
        return {"text": "never synced", "stale": True}
    stale = (now() - provider.synced_at).total_seconds() > 2 * sync_minutes * 60
    return {"text": f"synced {ago(provider.synced_at)}", "stale": stale}


# --- what the provider templates show ------------------------------------------------------


def _described(
    request: Request, session: Session, principal: Principal, providers: Sequence[Provider]
) -> dict[str, Any]:
    """Names, hosts, freshness and the latest sync of each provider (providers are few)."""
    zones, _ = inventory.list_zones(session, principal, ALL)
    clusters, _ = inventory.list_clusters(session, principal, ALL)
    sync_minutes = request.app.state.settings.provider_sync_minutes
    syncs = {p.id: latest_operation(session, principal, p.id) for p in providers}
    return {
        "zone_names": {z.id: z.name for z in zones},
        "clusters": clusters,
        "cluster_names": {c.id: c.name for c in clusters},
        "hosts": {p.id: inventory.count_provider_hosts(session, p.id)[0] for p in providers},
        "fresh": {p.id: freshness(p, sync_minutes) for p in providers},
        "operations": {pid: op for pid, op in syncs.items() if op is not None},
        "sync_minutes": sync_minutes,
    }


def _providers_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        providers, _ = service.list_providers(session, principal, ALL)
        context = _described(request, session, principal, providers)
    return panel(
        request,
        "providers_panel.html",
        principal,
        status,
        providers=providers,
        kinds=PROVIDER_KINDS,
        error=error,
        notice=notice,
        **context,
    )


@router.get("/providers", response_class=HTMLResponse)
def providers_page(request: Request) -> Response:
    intro = (
        "The clouds and hypervisors Yunguan drives. Each is synced on a schedule: its hosts "
        "go into the inventory and its machines are reconciled with the instances."
    )
    return page(request, "Providers", _providers_panel, intro)


def _json_object(field: str, text: str) -> Any:
    """A JSON object typed into a form (empty: none). The error never repeats the text."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"{field} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            code="invalid-field",
        )


@router.post("/providers/new", name="provider.create")
def provider_create(
    request: Request,
    name: FormText = "",
    kind: FormText = "",
    cluster_id: FormText = "",
    config: JsonText = "",
    secret: JsonText = "",
    description: FormText = "",
) -> Response:
    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        data = ProviderCreate.model_validate(
            {
                "name": name,
                "kind": kind,
                "cluster_id": cluster_id,
                "config": _json_object("config", config),
                "secret": _json_object("secret", secret),
                "description": description,
            }
        )
        provider, operation = service.create_provider(session, principal, data)
        return f"Registered provider “{provider.name}”; its first sync is queued.", [operation]

    return submit_work(request, _providers_panel, change)


# --- one provider: its row, its detail page ------------------------------------------------


def _one(request: Request, session: Session, principal: Principal) -> dict[str, Any]:
    provider = service.get_provider(session, principal, request.path_params["provider_id"])
    return {"p": provider} | _described(request, session, principal, [provider])


def _provider_row(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        context = _one(request, session, principal)
    return panel(
        request, "provider_row.html", principal, status, error=error, notice=notice, **context
    )


def _provider_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    """A provider's settings (never its credentials), hosts and importable machines."""
    with request.app.state.db.session(write=False) as session:
        context = _one(request, session, principal)
        provider_id = context["p"].id
        hosts, more_hosts = inventory.list_hosts(session, principal, ALL, provider_id=provider_id)
        context |= {
            "host_rows": hosts,
            "more_hosts": more_hosts,
            "tenants": identity.list_tenants(session, principal, ALL)[0],
            "flavors": compute.list_flavors(session, principal, ALL)[0],
            "images": compute.list_images(session, principal, ALL)[0],
        }
    return panel(
        request, "provider_detail.html", principal, status, error=error, notice=notice, **context
    )


VIEWS: dict[str, Panel] = {"row": _provider_row, "detail": _provider_panel}


@router.get("/providers/{provider_id}", response_class=HTMLResponse)
def provider_page(request: Request, provider_id: str) -> Response:
    return page(request, "Provider", _provider_panel)


@router.get("/providers/{provider_id}/{view}", response_class=HTMLResponse)
def provider_view(request: Request, provider_id: str, view: Literal["row", "detail"]) -> Response:
    return VIEWS[view](request, page_principal(request))


@router.post("/providers/{provider_id}/sync", name="provider.action")
def provider_sync(request: Request, provider_id: str, view: FormText = "row") -> Response:
    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        provider = service.get_provider(session, principal, provider_id)
        operation = service.request_sync(session, principal, provider)
        return f"Sync of “{provider.name}” queued.", [operation]

    return submit_work(request, VIEWS.get(view, _provider_row), change)


@router.post("/providers/{provider_id}/import", name="provider.action")
def provider_import(
    request: Request,
    provider_id: str,
    external_id: FormText = "",
    tenant_id: FormText = "",
    flavor_id: FormText = "",
    image_id: FormText = "",
    name: FormText = "",
) -> Response:
    """Adopt a machine the last sync listed as importable (audited as ``provider.action``)."""

    def change(session: Session, principal: Principal) -> str:
        data = ImportRequest.model_validate(
            {
                "external_id": external_id,
                "tenant_id": tenant_id,
                "flavor_id": flavor_id,
                "image_id": image_id,
                "name": name or None,
            }
        )
        instance = service.import_machine(session, principal, provider_id, data)
        return f"Imported “{instance.name}” as instance {instance.id}."

    return submit(request, _provider_panel, change)
