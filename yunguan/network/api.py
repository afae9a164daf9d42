"""REST: /vlan-pools, /ip-pools (and their addresses), /vpcs, /vxnets, /ports,
/security-groups, /eips, and the SDN controller's /sdn/hosts/{id}/… for agents and
operators."""

import time
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request, Response

from yunguan.core import audit
from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import AppSettings, DbSession
from yunguan.core.pagination import Page, Pages
from yunguan.identity.crud import Collection, add_collection
from yunguan.identity.deps import CurrentPrincipal
from yunguan.identity.scope import require
from yunguan.network import eips, pools, ports, schemas, topology, vpcs
from yunguan.network.sdn import agents, controller, learning

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))

COLLECTIONS = [
    Collection(
        "vlan-pool",
        "/vlan-pools",
        schemas.VlanPoolOut,
        schemas.VlanPoolCreate,
        schemas.VlanPoolUpdate,
        pools.list_vlan_pools,
        pools.create_vlan_pool,
        pools.get_vlan_pool,
        pools.update_vlan_pool,
        pools.delete_vlan_pool,
        filters=("zone_id", "network_type", "name"),
    ),
    Collection(
        "ip-pool",
        "/ip-pools",
        schemas.IpPoolOut,
        schemas.IpPoolCreate,
        schemas.IpPoolUpdate,
        pools.list_ip_pools,
        pools.create_ip_pool,
        pools.get_ip_pool,
        pools.update_ip_pool,
        pools.delete_ip_pool,
        filters=("vlan_pool_id", "zone_id", "purpose", "version"),
    ),
    Collection(
        "vpc",
        "/vpcs",
        schemas.VpcOut,
        schemas.VpcCreate,
        schemas.VpcUpdate,
        vpcs.list_vpcs,
        vpcs.create_vpc,
        vpcs.get_vpc,
        vpcs.update_vpc,
        vpcs.delete_vpc,
        filters=("tenant_id", "zone_id", "name"),
    ),
    Collection(
        "vxnet",
        "/vxnets",
        schemas.VxnetOut,
        schemas.VxnetCreate,
        schemas.VxnetUpdate,
        vpcs.list_vxnets,
        vpcs.create_vxnet,
        vpcs.get_vxnet,
        vpcs.update_vxnet,
        vpcs.delete_vxnet,
        filters=("tenant_id", "vpc_id", "name"),
    ),
    Collection(
        "port",
        "/ports",
        schemas.PortOut,
        schemas.PortCreate,
        schemas.PortUpdate,
        ports.list_ports,
        ports.create_port,
        ports.get_port,
        ports.update_port,
        ports.delete_port,
        filters=("tenant_id", "vxnet_id", "vpc_id", "ip_pool_id", "host_id", "device_id", "ip"),
    ),
    Collection(
        "security-group",
        "/security-groups",
        schemas.SecurityGroupOut,
        schemas.SecurityGroupCreate,
        schemas.SecurityGroupUpdate,
        ports.list_security_groups,
        ports.create_security_group,
        ports.get_security_group,
        ports.update_security_group,
        ports.delete_security_group,
        filters=("tenant_id", "name"),
    ),
    Collection(
        "eip",
        "/eips",
        schemas.EipOut,
        schemas.EipCreate,
        schemas.EipUpdate,
        eips.list_eips,
        eips.create_eip,
        eips.get_eip,
        eips.update_eip,
        eips.delete_eip,
        filters=("tenant_id", "ip_pool_id", "port_id", "vpc_id", "address"),
    ),
]
for _collection in COLLECTIONS:
    add_collection(router, _collection)

AddressText = Annotated[str, Path(min_length=2, max_length=45)]


@router.get(
    "/ip-pools/{item_id}/addresses", response_model=Page[schemas.AddressOut], tags=["ip-pools"]
)
def list_addresses(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    page: Pages,
    owner_id: Filter = None,
):
    rows, cursor = pools.list_addresses(session, principal, item_id, page, owner_id=owner_id)
    return Page(items=[schemas.AddressOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "/ip-pools/{item_id}/addresses",
    response_model=schemas.AddressOut,
    status_code=201,
    tags=["ip-pools"],
    name="ip-pool.allocate",
    responses=problem_responses(409),
)
def allocate_address(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.AddressRequest,
):
    """An address for an instance or server: the next free one, or the one asked for."""
    return pools.allocate_address(session, principal, item_id, body.owner_id, body.address)


@router.delete(
    "/ip-pools/{item_id}/addresses/{address}",
    status_code=204,
    tags=["ip-pools"],
    name="ip-pool.release",
    responses=problem_responses(409),
)
def release_address(
    session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, address: AddressText
):
    pools.release_address(session, principal, item_id, address)
    return Response(status_code=204)


@router.post(
    "/eips/{item_id}/actions",
    response_model=schemas.EipOut,
    tags=["eips"],
    name="eip.action",
    responses=problem_responses(409),
)
def eip_action(
    session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, body: schemas.EipAction
):
    return eips.act(session, principal, item_id, body)


@router.get("/vpcs/{item_id}/topology", tags=["vpcs"], name="vpc.topology")
def vpc_topology(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId) -> dict:
    """The VPC with its vxnets, their ports (and instances), and its EIPs."""
    return topology.vpc_topology(session, principal, item_id)


# --- the SDN controller's interface to agents -------------------------------------------------

POLL_SECONDS = 0.2


@router.get(
    "/sdn/hosts/{item_id}/document",
    tags=["sdn"],
    name="sdn.document",
    responses={304: {"description": "no change within the wait"}},
)
async def host_document(
    request: Request,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    since: Annotated[int | None, Query(ge=0, description="the version the agent has")] = None,
    wait: Annotated[float, Query(ge=0, le=60, description="long-poll seconds")] = 0,
) -> Any:
    """The host's desired state. With ``since``: answered once the version is newer, or
    304 after ``wait`` seconds. Without it (an agent that (re)starts): at once, in full."""
    require(principal, "inventory:read")
    db = request.app.state.db

    def newer() -> dict[str, Any] | None:
        with db.session(write=False) as session:
            controller.one_snapshot(session)
            version = controller.host_version(session, item_id)
            if since is not None and version <= since:
                return None
            return controller.document(session, item_id, version)

    deadline = time.monotonic() + wait
    while (found := await anyio.to_thread.run_sync(newer)) is None:
        if time.monotonic() >= deadline:
            return Response(status_code=304)
        await anyio.sleep(POLL_SECONDS)
    return found


@router.post("/sdn/hosts/{item_id}/learn", tags=["sdn"], name="sdn.learn")
def learn_report(
    session: DbSession,
    principal: CurrentPrincipal,
    settings: AppSettings,
    item_id: ResourceId,
    body: schemas.LearnReport,
) -> dict[str, list[dict[str, Any]]]:
    """Destinations the host reached through a gateway; the answer says which direct
    entries were granted (they appear in the host's next document)."""
    require(principal, "inventory:write")
    audit.note(routine=True)
    answers = learning.learn(
        session,
        item_id,
        [(d.vpc_id, d.ip) for d in body.destinations],
        ttl=timedelta(seconds=settings.sdn_learn_ttl_seconds),
        cap=settings.sdn_learn_cap,
    )
    return {"destinations": answers}


@router.post("/sdn/hosts/{item_id}/status", status_code=204, tags=["sdn"], name="sdn.status")
def agent_status(
    session: DbSession, principal: CurrentPrincipal, item_id: ResourceId, body: schemas.AgentReport
) -> Response:
    """What the host's agent holds: the version it applied, its routers and entries, and
    the routers it could not reconcile."""
    agents.record(session, principal, item_id, body.model_dump())
    audit.note(routine=True)
    return Response(status_code=204)


@router.get(
    "/sdn/hosts/{item_id}", response_model=schemas.SdnHostOut, tags=["sdn"], name="sdn.host"
)
def sdn_host(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId) -> Any:
    """The host's document version and its agent's last report: is it on the current
    document, without errors, and still reporting?"""
    return agents.host_state(session, principal, item_id)
