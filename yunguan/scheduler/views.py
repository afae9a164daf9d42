"""Portal page of the scheduler: placement policies and a "where would it go?" form."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yunguan.core.errors import Problem
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.inventory import service as inventory
from yunguan.scheduler import schemas, service
from yunguan.scheduler.models import STRATEGIES
from yunguan.web.portal import ALL, FormText, message, page, page_principal, panel, submit

router = APIRouter(include_in_schema=False)
Amount = Annotated[int, Form(ge=0, le=16 * 1024 * 1024)]


def _placement_panel(
    request: Request,
    principal: Principal,
    *,
    error=None,
    notice=None,
    status: int = 200,
    answer=None,
    report=None,
) -> Response:
    with request.app.state.db.session(write=False) as session:
        policies, _ = service.list_policies(session, principal, ALL)
        zones, _ = inventory.list_zones(session, principal, ALL)
        tenants, _ = identity.list_tenants(session, principal, ALL)
    return panel(
        request,
        "placement_panel.html",
        principal,
        status,
        policies=policies,
        zones=zones,
        tenants=tenants,
        zone_names={z.id: z.name for z in zones},
        tenant_names={t.id: t.name for t in tenants},
        strategies=STRATEGIES,
        answer=answer,
        report=report,
        error=error,
        notice=notice,
    )


@router.get("/placement", response_class=HTMLResponse)
def placement_page(request: Request) -> Response:
    intro = (
        "Requests of a tenant subtree follow its deepest policy, else the policy of the zone "
        "they land in, else spread."
    )
    return page(request, "Placement", _placement_panel, intro)


@router.post("/placement/policies", name="placement-policy.create")
def policy_create(
    request: Request, name: FormText, strategy: FormText, scope: FormText
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        kind, _, ident = scope.partition(":")
        data = schemas.PolicyCreate.model_validate(
            {"name": name, "strategy": strategy, f"{kind}_id": ident}
        )
        return f"Created policy “{service.create_policy(session, principal, data).name}”."

    return submit(request, _placement_panel, change)


@router.post("/placement/policies/{policy_id}", name="placement-policy.update")
def policy_strategy(request: Request, policy_id: str, strategy: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.PolicyUpdate.model_validate({"strategy": strategy})
        policy = service.update_policy(session, principal, policy_id, data)
        return f"Policy “{policy.name}” now places by {policy.strategy}."

    return submit(request, _placement_panel, change)


@router.post("/placement/policies/{policy_id}/delete", name="placement-policy.delete")
def policy_delete(request: Request, policy_id: str) -> Response:
    def change(session: Session, principal: Principal) -> str:
        service.delete_policy(session, principal, policy_id)
        return "Policy deleted."

    return submit(request, _placement_panel, change)


@router.post("/placement/dry-run")
def dry_run(
    request: Request,
    tenant_id: FormText,
    vcpus: Amount,
    memory_mb: Amount,
    disk_gb: Amount = 0,
    gpus: Amount = 0,
    zone_id: FormText = "",
    traits: FormText = "",
) -> Response:
    """Answers with the panel and the scheduler's verdict; changes nothing."""
    principal = page_principal(request)
    try:
        data = schemas.PlacementRequest(
            tenant_id=tenant_id,
            vcpus=vcpus,
            memory_mb=memory_mb,
            disk_gb=disk_gb,
            gpus=gpus,
            zone_id=zone_id or None,
            traits=traits.split(),
        )
        with request.app.state.db.session(write=False) as session:
            answer = service.dry_run(session, principal, data)
    except (Problem, ValidationError) as exc:
        status = exc.status if isinstance(exc, Problem) else 422
        return _placement_panel(request, principal, error=message(exc), status=status)
    return _placement_panel(request, principal, answer=answer)


@router.get("/placement/rebalance-report")
def rebalance_report(
    request: Request, threshold: Annotated[float, Query(gt=0, le=1)] = 0.8
) -> Response:
    """The panel with the hosts above ``threshold`` and the moves that would fix them."""
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        report = service.rebalance_report(session, principal, threshold)
    return _placement_panel(request, principal, report=report)
