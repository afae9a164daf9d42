"""Portal page of quotas: the tree of one resource class, limits, and a dry run."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yunguan.core.errors import Problem
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.quota import schemas, service
from yunguan.quota.models import RESOURCE_CLASSES
from yunguan.web.portal import ALL, FormText, message, page, page_principal, panel, submit

router = APIRouter(include_in_schema=False)
OptionalAmount = Annotated[str, Form(max_length=20)]


def _quota_panel(
    request: Request,
    principal: Principal,
    *,
    error=None,
    notice=None,
    status: int = 200,
    check=None,
) -> Response:
    resource = request.query_params.get("resource") or request.path_params.get("resource")
    resource = resource if resource in RESOURCE_CLASSES else "vcpus"
    with request.app.state.db.session(write=False) as session:
        tenants, _ = identity.list_tenants(session, principal, ALL)
        rows, _ = service.list_nodes(session, principal, resource, ALL)
        notices, _ = service.list_reclaims(session, principal, ALL, state="notified")
        nodes = {n.tenant_id: n for n in service.describe(session, rows)}

    depth = {t.id: t.depth for t in tenants}
    ordered = sorted(tenants, key=lambda t: t.path)
    return panel(
        request,
        "quota_panel.html",
        principal,
        status,
        resource=resource,
        resources=RESOURCE_CLASSES,
        tenants=ordered,
        depth=depth,
        nodes=nodes,
        check=check,
        notices=notices,
        names={t.id: t.name for t in tenants},
        error=error,
        notice=notice,
    )


@router.get("/quotas", response_class=HTMLResponse)
def quota_page(request: Request) -> Response:
    intro = (
        "Guarantee: what a tenant is promised. Its idle part may be lent to siblings up to the "
        "lend limit; a subtree may borrow up to its borrow limit; the cap bounds its usage."
    )
    return page(request, "Quotas", _quota_panel, intro)


def _amount(text: str) -> int | None:
    return int(text) if text.strip() else None


@router.post("/quotas/{resource}", name="quota.update")
def quota_set(
    request: Request,
    resource: str,
    tenant_id: FormText,
    guarantee: OptionalAmount = "",
    lend_limit: OptionalAmount = "",
    borrow_limit: OptionalAmount = "",
    cap: OptionalAmount = "",
    force: Annotated[bool, Form()] = False,
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        fields = {"lend_limit": lend_limit, "borrow_limit": borrow_limit, "cap": cap}
        try:
            values = {k: _amount(v) for k, v in fields.items()}
            if guarantee.strip():
                values["guarantee"] = int(guarantee)
        except ValueError:
            raise Problem("limits are whole numbers, or empty for unlimited", code="invalid-field")
        data = schemas.QuotaChange.model_validate({"resource": resource, "force": force, **values})
        node = service.configure(session, principal, tenant_id, data)
        return f"Set {resource} of {tenant_id}: guarantee {node.guarantee}."

    return submit(request, _quota_panel, change)


@router.post("/quotas/{resource}/check")
def quota_check(
    request: Request,
    resource: str,
    tenant_id: FormText,
    amount: Annotated[int, Form(ge=1, le=10**12)],
) -> Response:
    """The panel with the verdict; changes nothing."""
    principal = page_principal(request)
    try:
        data = schemas.CheckRequest.model_validate(
            {"tenant_id": tenant_id, "amounts": {resource: amount}}
        )
        with request.app.state.db.session() as session:
            answer = service.dry_run(session, principal, data.tenant_id, data.amounts)
    except (Problem, ValidationError) as exc:
        status = exc.status if isinstance(exc, Problem) else 422
        return _quota_panel(request, principal, error=message(exc), status=status)
    return _quota_panel(request, principal, check={**answer["verdicts"][0], **answer})


@router.get("/quotas/tree", response_class=HTMLResponse)
def quota_tree(request: Request, resource: Annotated[str, Query(max_length=32)] = "vcpus"):
    return _quota_panel(request, page_principal(request))
