"""Portal pages of the inventory: the topology tree with capacity, a cluster's hosts."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.core.errors import Problem
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.inventory import schemas, service
from yunguan.inventory.models import HOST_STATES, HYPERVISORS, POOL_KINDS
from yunguan.scheduler import service as scheduler
from yunguan.web.portal import ALL, FormText, message, page, page_principal, panel, submit

router = APIRouter(include_in_schema=False)
Count = Annotated[int, Form(ge=0, le=16 * 1024 * 1024)]


def _topology_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    """Regions → zones → pods → clusters, each with its capacity (hosts are per cluster)."""
    with request.app.state.db.session(write=False) as session:
        regions, _ = service.list_regions(session, principal, ALL)
        zones, _ = service.list_zones(session, principal, ALL)
        pods, _ = service.list_pods(session, principal, ALL)
        clusters, _ = service.list_clusters(session, principal, ALL)
        pools, _ = service.list_pools(session, principal, ALL)
        tenants, _ = identity.list_tenants(session, principal, ALL)
        capacity = {
            level: service.capacity_by(session, principal, level)
            for level in ("region", "zone", "pod", "cluster")
        }
    children: dict[str, list] = {}
    for row, parent in (
        *((z, z.region_id) for z in zones),
        *((p, p.zone_id) for p in pods),
        *((c, c.pod_id) for c in clusters),
    ):
        children.setdefault(parent, []).append(row)
    return panel(
        request,
        "topology_panel.html",
        principal,
        status,
        regions=regions,
        zones=zones,
        pods=pods,
        clusters=clusters,
        pools=pools,
        tenants=tenants,
        children=children,
        capacity=capacity,
        hypervisors=HYPERVISORS,
        pool_kinds=POOL_KINDS,
        error=error,
        notice=notice,
    )


@router.get("/infrastructure", response_class=HTMLResponse)
def topology_page(request: Request) -> Response:
    intro = "Allocated of what may be handed out (hardware times overcommit), per resource."
    return page(request, "Infrastructure", _topology_panel, intro)


def _created(kind: str, row) -> str:
    return f"Created {kind} “{row.name}”."


@router.post("/infrastructure/storage-pools", name="storage-pool.create")
def pool_create(
    request: Request,
    name: FormText,
    kind: FormText,
    zone_id: FormText,
    total_gb: Annotated[int, Form(ge=0, le=64 * 1024 * 1024)] = 0,
    source: FormText = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.StoragePoolCreate.model_validate(
            {"name": name, "kind": kind, "zone_id": zone_id, "total_gb": total_gb, "source": source}
        )
        return _created("storage pool", service.create_pool(session, principal, data))

    return submit(request, _topology_panel, change)


@router.post("/infrastructure/regions", name="region.create")
def region_create(request: Request, name: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        region = service.create_region(session, principal, schemas.RegionCreate(name=name))
        return _created("region", region)

    return submit(request, _topology_panel, change)


@router.post("/infrastructure/zones", name="zone.create")
def zone_create(
    request: Request,
    name: FormText,
    region_id: FormText,
    tenant_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.ZoneCreate(
            name=name,
            region_id=region_id,
            visibility="private" if tenant_ids else "public",
            tenant_ids=tenant_ids or [],
        )
        return _created("zone", service.create_zone(session, principal, data))

    return submit(request, _topology_panel, change)


@router.post("/infrastructure/pods", name="pod.create")
def pod_create(request: Request, name: FormText, zone_id: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.PodCreate(name=name, zone_id=zone_id)
        return _created("pod", service.create_pod(session, principal, data))

    return submit(request, _topology_panel, change)


@router.post("/infrastructure/clusters", name="cluster.create")
def cluster_create(
    request: Request,
    name: FormText,
    pod_id: FormText,
    hypervisor: FormText,
    cpu_overcommit: FormText = "1",
    memory_overcommit: FormText = "1",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.ClusterCreate.model_validate(
            {
                "name": name,
                "pod_id": pod_id,
                "hypervisor": hypervisor,
                "cpu_overcommit": cpu_overcommit,
                "memory_overcommit": memory_overcommit,
            }
        )
        return _created("cluster", service.create_cluster(session, principal, data))

    return submit(request, _topology_panel, change)


# --- a cluster's hosts ---------------------------------------------------------------------


def _hosts_panel(
    request: Request,
    principal: Principal,
    *,
    error=None,
    notice=None,
    status: int = 200,
    plan=None,
) -> Response:
    cluster_id = request.path_params["cluster_id"]
    with request.app.state.db.session(write=False) as session:
        cluster = service.get_cluster(session, principal, cluster_id)
        hosts, more = service.list_hosts(session, principal, ALL, cluster_id=cluster_id)
        view = service.capacity(session, principal, "cluster", cluster_id)
    return panel(
        request,
        "hosts_panel.html",
        principal,
        status,
        cluster=cluster,
        hosts=hosts,
        more=more,
        view=view,
        states=HOST_STATES,
        plan=plan,
        error=error,
        notice=notice,
    )


@router.get("/infrastructure/clusters/{cluster_id}", response_class=HTMLResponse)
def hosts_page(request: Request, cluster_id: str) -> Response:
    return page(request, "Hosts", _hosts_panel)


@router.post("/infrastructure/clusters/{cluster_id}/hosts", name="host.create")
def host_create(
    request: Request,
    cluster_id: str,
    name: FormText,
    cpu_cores: Count,
    memory_mb: Count,
    disk_gb: Count = 0,
    gpus: Count = 0,
    traits: FormText = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.HostCreate(
            name=name,
            cluster_id=cluster_id,
            cpu_cores=cpu_cores,
            memory_mb=memory_mb,
            disk_gb=disk_gb,
            gpus=gpus,
            traits=traits.split(),
        )
        return _created("host", service.create_host(session, principal, data))

    return submit(request, _hosts_panel, change)


@router.post("/infrastructure/clusters/{cluster_id}/hosts/{host_id}", name="host.update")
def host_state(request: Request, cluster_id: str, host_id: str, state: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.HostUpdate.model_validate({"state": state})
        host = service.update_host(session, principal, host_id, data)
        return f"Host “{host.name}” is now {host.state}."

    return submit(request, _hosts_panel, change)


@router.get("/infrastructure/clusters/{cluster_id}/hosts/{host_id}/evacuation-plan")
def host_evacuation_plan(request: Request, cluster_id: str, host_id: str) -> Response:
    """The hosts panel with the plan for one host (planning changes nothing)."""
    principal = page_principal(request)
    try:
        with request.app.state.db.session(write=False) as session:
            plan = scheduler.evacuation_plan(session, principal, host_id)
            plan["host_name"] = service.get_host(session, principal, host_id).name
    except Problem as exc:
        return _hosts_panel(request, principal, error=message(exc), status=exc.status)
    return _hosts_panel(request, principal, plan=plan)
