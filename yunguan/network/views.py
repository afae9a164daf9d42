"""Portal pages of the network: a tenant's VPCs as trees (vxnets, ports, EIPs) and, for
platform administrators, the VLAN and IP pools with their address usage and the state of
the hosts' data-plane agents."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.core import audit
from yunguan.core.errors import NotFound
from yunguan.identity import service as identity
from yunguan.identity.scope import Principal
from yunguan.inventory import service as inventory
from yunguan.network import eips, pools, schemas, topology, vpcs
from yunguan.network.models import NETWORK_TYPES, POOL_PURPOSES
from yunguan.network.sdn import agents
from yunguan.web.portal import ALL, FormText, page, panel, submit

router = APIRouter(include_in_schema=False)
Lines = Annotated[str, Form(max_length=4000)]


def _filled(**fields: str) -> dict[str, str]:
    """A form's filled-in fields: an empty input leaves the schema's default."""
    return {name: value.strip() for name, value in fields.items() if value.strip()}


# --- a tenant's networks -------------------------------------------------------------------


def _targets(trees: list[dict]) -> dict[str, str]:
    """What an EIP may be bound to, keyed by form value: VPC routers and ports."""
    targets = {}
    for vpc in trees:
        targets[f"vpc:{vpc['id']}"] = f"router of {vpc['name']} (SNAT)"
        for vxnet in vpc["vxnets"]:
            for port in vxnet["ports"]:
                targets[f"port:{port['id']}"] = f"{port['ip']} in {vpc['name']}/{vxnet['name']}"
    return targets


def _networks_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, _ = vpcs.list_vpcs(session, principal, ALL)
        trees = [topology.vpc_topology(session, principal, vpc.id) for vpc in rows]
        addresses, _ = eips.list_eips(session, principal, ALL)
        zones, _ = inventory.list_zones(session, principal, ALL)
        tenants, _ = identity.list_tenants(session, principal, ALL)
    return panel(
        request,
        "networks_panel.html",
        principal,
        status,
        networks=list(zip(rows, trees, strict=True)),
        eips=addresses,
        targets=_targets(trees),
        zones=zones,
        zone_names={z.id: z.name for z in zones},
        tenants=tenants,
        tenant_names={t.id: t.name for t in tenants},
        error=error,
        notice=notice,
    )


@router.get("/networks", response_class=HTMLResponse)
def networks_page(request: Request) -> Response:
    intro = (
        "A VPC is a private network of its own (its addresses may overlap other VPCs'); its "
        "vxnets are subnets, and an EIP gives a port or the whole VPC a public address."
    )
    return page(request, "Networks", _networks_panel, intro)


@router.post("/networks/vpcs", name="vpc.create")
def vpc_create(
    request: Request, name: FormText, zone_id: FormText, cidr: FormText, tenant_id: FormText = ""
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        fields = _filled(name=name, zone_id=zone_id, cidr=cidr, tenant_id=tenant_id)
        vpc = vpcs.create_vpc(session, principal, schemas.VpcCreate.model_validate(fields))
        return f"Created VPC “{vpc.name}” ({vpc.cidr})."

    return submit(request, _networks_panel, change)


@router.post("/networks/vpcs/{vpc_id}/vxnets", name="vxnet.create")
def vxnet_create(request: Request, vpc_id: str, name: FormText, cidr: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        data = schemas.VxnetCreate.model_validate(_filled(vpc_id=vpc_id, name=name, cidr=cidr))
        vxnet = vpcs.create_vxnet(session, principal, data)
        return f"Created vxnet “{vxnet.name}” ({vxnet.cidr}, gateway {vxnet.gateway_ip})."

    return submit(request, _networks_panel, change)


@router.post("/networks/eips", name="eip.create")
def eip_create(
    request: Request,
    name: FormText = "",
    zone_id: FormText = "",
    bandwidth_mbps: FormText = "",
    tenant_id: FormText = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        fields = _filled(
            name=name, zone_id=zone_id, bandwidth_mbps=bandwidth_mbps, tenant_id=tenant_id
        )
        eip = eips.create_eip(session, principal, schemas.EipCreate.model_validate(fields))
        return f"Allocated EIP {eip.address}."

    return submit(request, _networks_panel, change)


BINDABLE = ("port", "vpc")


@router.post("/networks/eips/{eip_id}", name="eip.action")
def eip_action(request: Request, eip_id: str, action: FormText, target: FormText = "") -> Response:
    """Bind an EIP to ``target`` (``port:ID`` or ``vpc:ID``), or unbind it."""

    def change(session: Session, principal: Principal) -> str:
        kind, _, target_id = target.partition(":")
        bound_to = {f"{kind}_id": target_id} if action == "bind" and kind in BINDABLE else {}
        data = schemas.EipAction.model_validate({"action": action, **bound_to})
        eip = eips.act(session, principal, eip_id, data)
        return f"EIP {eip.address} {'bound' if eip.port_id or eip.vpc_id else 'unbound'}."

    return submit(request, _networks_panel, change)


DELETABLE: dict[str, tuple[str, Callable[[Session, Principal, str], None]]] = {
    "vpcs": ("VPC", vpcs.delete_vpc),
    "vxnets": ("Vxnet", vpcs.delete_vxnet),
    "eips": ("EIP", eips.delete_eip),
}


@router.post("/networks/{kind}/{item_id}/delete", name="network.delete")
def network_delete(request: Request, kind: str, item_id: str) -> Response:
    """Delete a VPC, a vxnet or an EIP (audited as the API's ``vpc.delete`` and so on)."""
    if kind in DELETABLE:
        audit.note(action=f"{kind.removesuffix('s')}.delete")

    def change(session: Session, principal: Principal) -> str:
        if kind not in DELETABLE:
            raise NotFound(f"no such kind of network resource: {kind}")
        what, delete = DELETABLE[kind]
        delete(session, principal, item_id)
        return f"{what} deleted."

    return submit(request, _networks_panel, change)


# --- VLAN and IP pools (platform infrastructure) -------------------------------------------


def _pools_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        ip_pools, _ = pools.list_ip_pools(session, principal, ALL)
        vlan_pools, _ = pools.list_vlan_pools(session, principal, ALL)
        zones, _ = inventory.list_zones(session, principal, ALL)
    return panel(
        request,
        "pools_panel.html",
        principal,
        status,
        ip_pools=ip_pools,
        vlan_pools=vlan_pools,
        zones=zones,
        zone_names={z.id: z.name for z in zones},
        vlan_names={p.id: p.name for p in vlan_pools},
        network_types=NETWORK_TYPES,
        purposes=POOL_PURPOSES,
        error=error,
        notice=notice,
    )


@router.get("/ip-pools", response_class=HTMLResponse)
def pools_page(request: Request) -> Response:
    intro = (
        "Addresses of each IP pool: used by ports and EIPs, reserved (gateway and reserved "
        "ranges), cooling down after release, and free. VLAN pools hand out VLAN ids and VNIs."
    )
    return page(request, "IP pools", _pools_panel, intro)


@router.post("/ip-pools/vlan-pools/new", name="vlan-pool.create")
def vlan_pool_create(
    request: Request,
    name: FormText,
    zone_id: FormText,
    first_id: FormText,
    last_id: FormText,
    network_type: FormText = "vlan",
    cidr: FormText = "",
    gateway: FormText = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        fields = _filled(
            name=name,
            zone_id=zone_id,
            network_type=network_type,
            first_id=first_id,
            last_id=last_id,
            cidr=cidr,
            gateway=gateway,
        )
        data = schemas.VlanPoolCreate.model_validate(fields)
        pool = pools.create_vlan_pool(session, principal, data)
        return f"Created VLAN pool “{pool.name}” ({pool.first_id}-{pool.last_id})."

    return submit(request, _pools_panel, change)


@router.post("/ip-pools/new", name="ip-pool.create")
def ip_pool_create(
    request: Request,
    name: FormText,
    vlan_pool_id: FormText,
    purpose: FormText = "guest",
    vlan: FormText = "",
    cidr: FormText = "",
    gateway: FormText = "",
    ranges: Lines = "",
    reserved: Lines = "",
) -> Response:
    def change(session: Session, principal: Principal) -> str:
        fields = _filled(
            name=name,
            vlan_pool_id=vlan_pool_id,
            purpose=purpose,
            vlan=vlan,
            cidr=cidr,
            gateway=gateway,
        )
        data = schemas.IpPoolCreate.model_validate(
            {
                **fields,
                "ranges": schemas.ranges_from_text(ranges.splitlines()),
                "reserved": schemas.ranges_from_text(reserved.splitlines()),
            }
        )
        pool = pools.create_ip_pool(session, principal, data)
        return f"Created IP pool “{pool.name}” ({pool.cidr}, {pool.usage['free']} free)."

    return submit(request, _pools_panel, change)


# --- the hosts' data-plane agents ----------------------------------------------------------


def _agents_panel(request: Request, principal: Principal) -> Response:
    with request.app.state.db.session(write=False) as session:
        hosts, more = agents.overview(session, principal, ALL.limit)
    return panel(request, "agents_panel.html", principal, 200, hosts=hosts, more=more)


@router.get("/sdn", response_class=HTMLResponse)
def agents_page(request: Request) -> Response:
    intro = (
        "Each host's data-plane agent reports the document version it applied, what its "
        f"kernel holds and the routers it could not set up; silent for over "
        f"{agents.STALE_AFTER.seconds} s, it is stale."
    )
    return page(request, "SDN agents", _agents_panel, intro)
