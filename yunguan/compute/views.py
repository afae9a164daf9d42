"""Portal pages of compute: a tenant's instances with their power actions, the create wizard
whose rows follow each new instance's provisioning, and an instance's detail (network,
events, console log)."""

from collections.abc import Callable, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.compute import schemas
from yunguan.compute import service as compute
from yunguan.compute.models import Instance
from yunguan.core.errors import BadGateway, Conflict, NotFound
from yunguan.identity.scope import Principal
from yunguan.inventory import service as inventory
from yunguan.network import vpcs
from yunguan.providers import service as providers
from yunguan.web.portal import (
    ALL,
    FormText,
    Panel,
    latest_operation,
    page,
    page_principal,
    panel,
    submit_work,
)
from yunguan.workflows import service as operations
from yunguan.workflows.models import Operation

router = APIRouter(include_in_schema=False)

# what the portal offers -> the states an instance must be in for it
OFFERED = {action: (start,) for action, (start, _) in compute.ACTIONS.items()}
OFFERED["delete"] = compute.SETTLED
DOING = {"start": "Starting", "stop": "Stopping", "reboot": "Rebooting", "delete": "Deleting"}
CONSOLE_GAPS = {
    "no-machine": "The machine does not exist yet: it is made while the instance is created.",
    "unsupported": "This instance's provider does not offer a console log.",
}


# --- what the instance templates show ------------------------------------------------------


def _names(session: Session, principal: Principal, instances: Sequence[Instance]) -> dict:
    zones, _ = inventory.list_zones(session, principal, ALL)
    flavors, _ = compute.list_flavors(session, principal, ALL)
    hosts = [i.host_id for i in instances if i.host_id] if principal.is_platform_admin else []
    return {
        "zone_names": {z.id: z.name for z in zones},
        "flavor_names": {f.id: f.name for f in flavors},
        "host_names": inventory.host_names(session, hosts) if hosts else {},
        "offered": OFFERED,
    }


def _listed(session: Session, principal: Principal, instances: Sequence[Instance]) -> dict:
    """The listed instances' names, and the operations of those being worked on."""
    working = {
        i.id: operations.get_operation(session, principal, i.operation_id)
        for i in instances
        if i.operation_id
    }
    return _names(session, principal, instances) | {"operations": working}


def _one(session: Session, principal: Principal, instance_id: str) -> dict:
    """One instance with its latest operation, running or just ended (a fragment shows how
    it went)."""
    # The operation first: a workflow commits its end with the instance's new state, and
    # each later read sees at least as much, so a row never shows an ended operation (and
    # stops polling) beside the state from before it (PostgreSQL reads READ COMMITTED).
    latest = latest_operation(session, principal, instance_id)
    instance = compute.get_instance(session, principal, instance_id)
    return _names(session, principal, [instance]) | {
        "i": instance,
        "operations": {instance.id: latest} if latest else {},
    }


def _found(get: Callable[..., Any], session: Session, principal: Principal, ident: str | None):
    """A related row the principal may see, or None (none, gone, or another tenant's)."""
    if ident is None:
        return None
    try:
        return get(session, principal, ident)
    except NotFound:
        return None


def _detailed(session: Session, principal: Principal, instance_id: str) -> dict:
    context = _one(session, principal, instance_id)
    instance = context["i"]
    return context | {
        "image": _found(compute.get_image, session, principal, instance.image_id),
        "vxnet": _found(vpcs.get_vxnet, session, principal, instance.vxnet_id),
        "provider": _found(providers.get_provider, session, principal, instance.provider_id)
        if principal.is_platform_admin
        else None,
        "events": compute.list_events(session, principal, instance.id),
    }


def _console(session: Session, principal: Principal, instance: Instance) -> dict[str, str]:
    """The machine's console log read from the provider, or why there is none."""
    if instance.state == "deleted":
        return {"console_gap": "The instance is deleted: its machine is gone."}
    try:
        return {"console": compute.console_log(session, principal, instance.id)}
    except Conflict as exc:
        return {"console_gap": CONSOLE_GAPS.get(exc.code, exc.detail)}
    except BadGateway as exc:
        return {"console_gap": f"The provider did not answer: {exc.detail}"}


# --- the instances page and its create wizard ----------------------------------------------


def _wizard(session: Session, principal: Principal, chosen: dict[str, str]) -> dict:
    """The create form's choices: the images and the principal's vxnets of the chosen zone
    (the first zone when none is chosen)."""
    zones, _ = inventory.list_zones(session, principal, ALL)
    zone_id = chosen.get("zone_id") or (zones[0].id if zones else "")
    images, _ = compute.list_images(session, principal, ALL)
    vpc_rows, _ = vpcs.list_vpcs(session, principal, ALL, zone_id=zone_id)
    vxnets, _ = vpcs.list_vxnets(session, principal, ALL, tenant_id=principal.tenant_id)
    in_zone = {v.id: v.name for v in vpc_rows}
    return {
        "chosen": chosen | {"zone_id": zone_id},
        "zones": zones,
        "flavors": compute.list_flavors(session, principal, ALL)[0],
        "images": [image for image in images if zone_id in image.locations],
        "vxnets": [(v, in_zone[v.vpc_id]) for v in vxnets if v.vpc_id in in_zone],
    }


def _instances_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        instances, more = compute.list_instances(session, principal, ALL)
        context = _listed(session, principal, instances) | _wizard(session, principal, {})
    return panel(
        request,
        "instances_panel.html",
        principal,
        status,
        instances=instances,
        more=more,
        error=error,
        notice=notice,
        **context,
    )


@router.get("/instances", response_class=HTMLResponse)
def instances_page(request: Request) -> Response:
    intro = (
        "Virtual machines (and bare-metal servers) of your tenant. New ones show their "
        "provisioning step by step; power actions are offered when the state allows them."
    )
    return page(request, "Instances", _instances_panel, intro)


@router.get("/instances/new", response_class=HTMLResponse)
def instance_wizard(request: Request) -> Response:
    """The create form again, for the zone now chosen (what was typed is kept)."""
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        context = _wizard(session, principal, dict(request.query_params))
    return panel(request, "instance_wizard.html", principal, 200, **context)


@router.post("/instances/new", name="instance.create")
def instance_create(
    request: Request,
    name: FormText = "",
    flavor_id: FormText = "",
    image_id: FormText = "",
    zone_id: FormText = "",
    vxnet_id: FormText = "",
    count: FormText = "1",
) -> Response:
    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        data = schemas.InstanceCreate.model_validate(
            {
                "name": name,
                "flavor_id": flavor_id,
                "image_id": image_id,
                "zone_id": zone_id or None,
                "vxnet_id": vxnet_id or None,  # automatic: the tenant's first in the zone
                "count": count,
            }
        )
        made = compute.request_create(session, principal, data)
        names = ", ".join(f"“{instance.name}”" for instance, _ in made)
        return f"Creating {names}.", [operation for _, operation in made]

    return submit_work(request, _instances_panel, change)


# --- one instance: its row, its detail page --------------------------------------------------


def _fragment(template: str, context_of: Callable[[Session, Principal, str], dict]) -> Panel:
    """A part of one instance's view that polls while it is worked on and that its action
    buttons replace: its row in the list, or the summary on its detail page."""

    def render(
        request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
    ) -> Response:
        with request.app.state.db.session(write=False) as session:
            context = context_of(session, principal, request.path_params["instance_id"])
        return panel(request, template, principal, status, error=error, notice=notice, **context)

    return render


FRAGMENTS = {
    "row": _fragment("instance_row.html", _one),
    "summary": _fragment("instance_summary.html", _detailed),
}


def _detail_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        context = _detailed(session, principal, request.path_params["instance_id"])
        context |= _console(session, principal, context["i"])
    return panel(
        request, "instance_detail.html", principal, status, error=error, notice=notice, **context
    )


@router.get("/instances/{instance_id}", response_class=HTMLResponse)
def instance_page(request: Request, instance_id: str) -> Response:
    return page(request, "Instance", _detail_panel)


@router.get("/instances/{instance_id}/console", response_class=HTMLResponse)
def console_fragment(request: Request, instance_id: str) -> Response:
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        instance = compute.get_instance(session, principal, instance_id)
        context = _console(session, principal, instance)
    return panel(request, "instance_console.html", principal, 200, i=instance, **context)


@router.get("/instances/{instance_id}/{fragment}", response_class=HTMLResponse)
def instance_fragment(
    request: Request, instance_id: str, fragment: Literal["row", "summary"]
) -> Response:
    return FRAGMENTS[fragment](request, page_principal(request))


Start = Callable[[Session, Principal], tuple[Instance, Operation]]


def _act(request: Request, view: str, doing: str, start: Start) -> Response:
    """Start work on the instance; answer the view it was asked from (its row by default)."""

    def change(session: Session, principal: Principal) -> tuple[str, list[Operation]]:
        instance, operation = start(session, principal)
        return f"{doing} “{instance.name}”.", [operation]

    return submit_work(request, FRAGMENTS.get(view, FRAGMENTS["row"]), change)


@router.post("/instances/{instance_id}/actions", name="instance.action")
def instance_action(
    request: Request, instance_id: str, action: FormText = "", view: FormText = "row"
) -> Response:
    """``start``, ``stop`` or ``reboot`` (audited as the API's ``instance.action``)."""

    def start(session: Session, principal: Principal) -> tuple[Instance, Operation]:
        chosen = schemas.InstanceAction.model_validate({"action": action}).action
        return compute.request_action(session, principal, instance_id, chosen)

    return _act(request, view, DOING.get(action, ""), start)


@router.post("/instances/{instance_id}/delete", name="instance.delete")
def instance_delete(request: Request, instance_id: str, view: FormText = "row") -> Response:
    def start(session: Session, principal: Principal) -> tuple[Instance, Operation]:
        return compute.request_delete(session, principal, instance_id)

    return _act(request, view, DOING["delete"], start)
