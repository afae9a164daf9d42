"""``yunguan serve --demo``: a small organisation and a simulated data centre to click
through on first start."""

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing import service as billing
from yunguan.billing.schemas import AccountAction, AccountCreate, PriceBookAction, PriceBookCreate
from yunguan.catalog import service as catalog
from yunguan.catalog.schemas import (
    CategoryCreate,
    ItemCreate,
    TemplateCreate,
    VersionAction,
    VersionCreate,
)
from yunguan.compute import service as compute
from yunguan.compute.models import Flavor, Image
from yunguan.compute.schemas import FlavorCreate, ImageCreate, InstanceCreate
from yunguan.core.clock import now
from yunguan.core.config import Settings
from yunguan.core.ids import new_id
from yunguan.identity import credentials
from yunguan.identity.models import Tenant, User
from yunguan.identity.roles import PLATFORM_ADMIN
from yunguan.identity.scope import Principal
from yunguan.identity.service import bootstrap_user, ensure_root_tenant
from yunguan.inventory import schemas
from yunguan.inventory import service as inventory
from yunguan.inventory.models import Cluster, Host, Pod, Zone
from yunguan.network import eips, pools, ports, vpcs
from yunguan.network.models import Vxnet
from yunguan.network.schemas import (
    EipAction,
    EipCreate,
    IpPoolCreate,
    PortCreate,
    VlanPoolCreate,
    VpcCreate,
    VxnetCreate,
)
from yunguan.orders import approvals
from yunguan.orders import schemas as order_schemas
from yunguan.providers import service as providers
from yunguan.providers.base import Collected
from yunguan.providers.schemas import ProviderCreate
from yunguan.providers.simulator.driver import Config as SimulatorConfig
from yunguan.providers.simulator.driver import Secret as SimulatorSecret
from yunguan.providers.simulator.driver import SimulatorDriver
from yunguan.scheduler import service as scheduler
from yunguan.scheduler.schemas import PolicyCreate

DEMO_ADMIN = ("admin", "Yunguan-Demo-2026")
DEMO_PASSWORD = "Demo-Passw0rd!"
DEMO_REVIEWER = ("reviewer", DEMO_PASSWORD)
"""A second platform administrator: catalog versions the demo admin submits are published
by someone else (four eyes)."""

# name -> children; every tenant gets a tenant-admin and a member.
TREE = {
    "Acme Group": {"Engineering": {"Platform Team": {}, "Data Team": {}}, "Finance": {}},
    "Industrial Park Authority": {"Tenant Services": {}},
}


def seed(session: Session, settings: Settings) -> bool:
    """Create the demo organisation unless the database already has users."""
    if session.scalar(select(func.count()).select_from(User)):
        return False
    root = ensure_root_tenant(session)
    admin = bootstrap_user(session, *DEMO_ADMIN, ["platform-admin"], settings)
    reviewer = bootstrap_user(session, *DEMO_REVIEWER, ["platform-admin"], settings)
    password_hash = credentials.hash_password(DEMO_PASSWORD)

    def plant(parent: Tenant, children: dict) -> None:
        for name, grandchildren in children.items():
            tenant_id = new_id("t")
            tenant = Tenant(
                id=tenant_id, name=name, parent_id=parent.id, path=f"{parent.path}{tenant_id}/"
            )
            session.add(tenant)
            slug = name.lower().replace(" ", "-")
            for suffix, roles in (("admin", ["tenant-admin"]), ("user", ["member"])):
                session.add(
                    User(
                        id=new_id("u"),
                        username=f"{slug}-{suffix}",
                        tenant_id=tenant_id,
                        password_hash=password_hash,
                        roles=roles,
                    )
                )
            plant(tenant, grandchildren)

    plant(root, TREE)
    session.flush()
    _datacentre(session, settings, root)
    _catalog(session, _acting(admin, root), _acting(reviewer, root))
    _billing(session, _acting(admin, root))
    return True


DEMO_PRICES = {"s1.small": "0.25", "s2.medium": "0.50", "m4.large": "1.20"}  # CNY an hour
EGRESS_TIERS = [("10", "0.80"), ("50", "0.50"), (None, "0.40")]  # CNY a GB


def _billing(session: Session, operator: Principal) -> None:
    """A published ``list`` price book (the flavors by the hour with a one-minute minimum,
    disks by the GB-month, addresses by the hour, cheaper bound than idle, egress in
    graduated tiers); Acme pays monthly with a credit limit, the park prepays."""
    flavors = session.scalars(select(Flavor)).all()
    items = [
        {"meter": "instance.running", "price_key": f.id, "unit_price": DEMO_PRICES[f.name]}
        | {"min_charge_seconds": 60, "description": f.name}
        for f in flavors
    ]
    items += [
        {"meter": meter, "basis": "month", "unit_price": price}
        for meter, price in (("volume.gb", "0.30"), ("snapshot.gb", "0.10"))
    ]
    items += [
        {"meter": "eip.allocated", "price_key": key, "unit_price": price}
        for key, price in (("idle", "0.05"), ("bound", "0.02"))
    ]
    tiers = [{"upper": upper, "unit_price": price} for upper, price in EGRESS_TIERS]
    items.append(
        {"meter": "network.egress_gb", "basis": "unit", "model": "graduated", "tiers": tiers}
    )
    book = billing.create_book(
        session, operator, PriceBookCreate.model_validate({"name": "list", "items": items})
    )
    billing.act_on_book(session, operator, book.id, PriceBookAction(action="publish"))
    by_name = {t.name: t for t in session.scalars(select(Tenant))}
    billing.create_account(
        session,
        operator,
        AccountCreate.model_validate(
            {"tenant_id": by_name["Acme Group"].id, "credit_limit": "50000"}
        ),
    )
    park = billing.create_account(
        session,
        operator,
        AccountCreate(tenant_id=by_name["Industrial Park Authority"].id, mode="prepaid"),
    )
    for action, amount in (("top-up", "1000.00"), ("grant", "200.00")):
        change = AccountAction.model_validate(
            {"action": action, "amount": amount, "reference": f"demo-{action}"}
        )
        billing.act_on_account(session, operator, park.id, change)


def _acting(user: User, root: Tenant) -> Principal:
    return Principal(user.id, user.username, root.id, root.path, frozenset(user.roles))


def _datacentre(session: Session, settings: Settings, root: Tenant) -> None:
    """One region; a public zone (KVM with overcommit, a GPU host, bare metal) that packs,
    and a zone private to the industrial park; a primary pool measured on the data dir;
    their networks."""
    operator = Principal("u-demo", "demo", root.id, root.path, frozenset({PLATFORM_ADMIN}))
    park = session.scalars(select(Tenant).where(Tenant.name == "Industrial Park Authority")).one()
    region = inventory.create_region(session, operator, schemas.RegionCreate(name="cn-east"))
    public = inventory.create_zone(
        session, operator, schemas.ZoneCreate(name="east-1a", region_id=region.id)
    )
    park_zone = inventory.create_zone(
        session,
        operator,
        schemas.ZoneCreate(
            name="park-1", region_id=region.id, visibility="private", tenant_ids=[park.id]
        ),
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for zone, clusters in ((public, DEMO_CLUSTERS), (park_zone, DEMO_CLUSTERS[:1])):
        pod = inventory.create_pod(
            session, operator, schemas.PodCreate(name="rack-01", zone_id=zone.id)
        )
        for hypervisor_index, (name, hypervisor, cpu, hosts) in enumerate(clusters):
            cluster = inventory.create_cluster(
                session,
                operator,
                schemas.ClusterCreate(
                    name=name, pod_id=pod.id, hypervisor=hypervisor, cpu_overcommit=cpu
                ),
            )
            inventory.insert_hosts(
                session,
                [
                    {
                        **spec,
                        "name": f"{zone.name}-{name}-{n:02d}",
                        "cluster_id": cluster.id,
                        "address": f"10.250.{len(clusters) * 10 + hypervisor_index}.{n + 1}",
                    }
                    for n, spec in enumerate(hosts)
                ],
            )
    inventory.create_pool(
        session,
        operator,
        schemas.StoragePoolCreate(
            name="east-1a-images",
            kind="secondary",
            zone_id=public.id,
            source=settings.data_dir.resolve().as_uri(),
        ),
    )
    scheduler.create_policy(
        session,
        operator,
        PolicyCreate(name="east-1a packs", strategy="pack", zone_id=public.id),
    )
    _networks(session, operator, public.id, park_zone.id)
    _compute(session, operator, public.id)


def _compute(session: Session, operator: Principal, zone_id: str) -> None:
    """A simulated KVM cluster in east-1a (its hosts collected now), flavors, a public image,
    and the Platform Team's first instances: recorded as ``creating``, so the platform
    provisions them through the ordinary workflow when it starts."""
    pod = session.scalars(select(Pod).where(Pod.zone_id == zone_id)).first()
    cluster = inventory.create_cluster(
        session,
        operator,
        schemas.ClusterCreate(name="kvm-sim", pod_id=pod.id, hypervisor="kvm", cpu_overcommit=4),
    )
    provider, _ = providers.create_provider(
        session,
        operator,
        ProviderCreate(
            name="east-1a-simulator",
            kind="simulator",
            cluster_id=cluster.id,
            config={"realm": "east-1a-sim", "hosts": 8, "boot_seconds": 2},
        ),
    )
    config = SimulatorConfig.model_validate(provider.config)
    simulator = SimulatorDriver(config, SimulatorSecret())
    providers.apply_collected(session, provider.id, Collected(simulator.hosts(), []), now())
    flavors = [
        compute.create_flavor(
            session, operator, FlavorCreate(name=name, vcpus=cpu, memory_mb=mem, disk_gb=disk)
        )
        for name, cpu, mem, disk in DEMO_FLAVORS
    ]
    image = compute.create_image(
        session,
        operator,
        ImageCreate(
            name="debian-12",
            os_version="12",
            min_disk_gb=10,
            visibility="public",
            locations={zone_id: ""},
        ),
    )
    team = session.scalars(select(Tenant).where(Tenant.name == "Platform Team")).one()
    web = session.scalars(select(Vxnet).where(Vxnet.name == "web")).one()
    compute.request_create(
        session,
        operator,
        InstanceCreate(
            name="web",
            flavor_id=flavors[1].id,
            image_id=image.id,
            tenant_id=team.id,
            vxnet_id=web.id,
            count=2,
        ),
    )


def _networks(session: Session, operator: Principal, public_id: str, park_id: str) -> None:
    """Each zone: VNIs for vxnets and a guest VLAN; east-1a: public addresses for EIPs and
    the Platform Team's VPC (web and db vxnets, a few ports, an EIP)."""
    for n, zone_id in enumerate((public_id, park_id)):
        vni = VlanPoolCreate(
            name=f"vni-{n}", zone_id=zone_id, network_type="vxlan", first_id=1000, last_id=4999
        )
        pools.create_vlan_pool(session, operator, vni)
        guest = pools.create_vlan_pool(
            session,
            operator,
            VlanPoolCreate(
                name=f"guest-{n}",
                zone_id=zone_id,
                first_id=100 + n * 100,
                last_id=199 + n * 100,
                cidr=f"172.{20 + n}.0.0/22",
                gateway=f"172.{20 + n}.0.1",
                label="br-guest",
            ),
        )
        pools.create_ip_pool(
            session, operator, IpPoolCreate(name=f"guest-{n}", vlan_pool_id=guest.id)
        )
    public = pools.create_vlan_pool(
        session,
        operator,
        VlanPoolCreate(
            name="public",
            zone_id=public_id,
            first_id=10,
            last_id=10,
            cidr="203.0.113.0/26",
            gateway="203.0.113.1",
        ),
    )
    pools.create_ip_pool(
        session,
        operator,
        IpPoolCreate(name="eips", vlan_pool_id=public.id, purpose="public", cooldown_seconds=600),
    )
    team = session.scalars(select(Tenant).where(Tenant.name == "Platform Team")).one()
    vpc = vpcs.create_vpc(
        session,
        operator,
        VpcCreate(name="platform", zone_id=public_id, cidr="10.0.0.0/16", tenant_id=team.id),
    )
    web, db = (
        vpcs.create_vxnet(session, operator, VxnetCreate(name=name, vpc_id=vpc.id, cidr=cidr))
        for name, cidr in (("web", "10.0.1.0/24"), ("db", "10.0.2.0/24"))
    )
    hosts = session.scalars(
        select(Host.id)
        .join(Cluster, Cluster.id == Host.cluster_id)
        .where(Cluster.name == "kvm-general", Host.zone_id == public_id)
        .order_by(Host.name)
    ).all()
    made = [
        ports.create_port(session, operator, PortCreate(vxnet_id=vxnet.id, host_id=host))
        for vxnet, host in ((web, hosts[2]), (web, hosts[3]), (web, hosts[4]), (db, hosts[3]))
    ]
    eip = eips.create_eip(session, operator, EipCreate(tenant_id=team.id, name="web"))
    eips.act(session, operator, eip.id, EipAction(action="bind", port_id=made[0].id))


_KVM = {"cpu_sockets": 2, "cpu_cores": 32, "cpu_mhz": 2600, "memory_mb": 262144, "disk_gb": 4000}
_METAL = {**_KVM, "cpu_cores": 48, "memory_mb": 393216, "disk_count": 2, "disk_gb": 2 * 1920}
DEMO_FLAVORS = [("s1.small", 1, 2048, 20), ("s2.medium", 2, 4096, 40), ("m4.large", 4, 16384, 80)]
DEMO_CLUSTERS = [
    (
        "kvm-general",
        "kvm",
        4,
        [{**_KVM, "traits": ["ssd"] + (["sdn-gateway"] if n < 2 else [])} for n in range(12)],
    ),
    ("kvm-gpu", "kvm", 2, [{**_KVM, "gpus": 4, "traits": ["ssd", "gpu-a100"]} for _ in range(2)]),
    ("metal", "baremetal", 1, [{**_METAL, "bmc_address": f"10.20.0.{n}"} for n in range(4)]),
]


DEMO_CATEGORIES = [
    ("Compute", "Virtual machines of the public zone"),
    ("Bundles", "Several machines that work together"),
    ("SaaS", "Services run by partners"),
]


def _catalog(session: Session, author: Principal, reviewer: Principal) -> None:
    """Categories and three templates the admin wrote and the reviewer published (the VM's
    second version waits for review), offered to every tenant, and the VM once more to the
    industrial park only."""
    flavors = session.scalars(select(Flavor).order_by(Flavor.vcpus)).all()
    image = session.scalars(select(Image).where(Image.name == "debian-12")).one()
    zone = session.scalars(select(Zone).where(Zone.name == "east-1a")).one()
    categories = [
        catalog.create_category(
            session, author, CategoryCreate(name=name, description=about, sort_order=n)
        )
        for n, (name, about) in enumerate(DEMO_CATEGORIES)
    ]
    published = []
    for template in _templates(flavors, image, zone.id):
        made = catalog.create_template(session, author, template)
        catalog.act(session, author, made.id, 1, VersionAction(action="submit"))
        approval = VersionAction(action="approve", comment="demo catalog")
        published.append(catalog.act(session, reviewer, made.id, 1, approval))
    vm = published[0]
    more = VersionCreate.model_validate(_linux_vm(flavors, image, most=10))
    catalog.create_version(session, author, vm.template_id, more)
    catalog.act(session, author, vm.template_id, 2, VersionAction(action="submit"))
    park = session.scalars(select(Tenant).where(Tenant.name == "Industrial Park Authority")).one()
    offers = [
        ("Linux VM", "Debian 12 in the size you choose", categories[0], vm, "180", []),
        ("Web stack", "Web servers and a database", categories[1], published[1], "960", []),
        ("Object storage", "A bucket at our partner", categories[2], published[2], "45", []),
        ("Park Linux VM", "For the park's tenants", categories[0], vm, "150", [park.id]),
    ]
    for name, description, category, version, price, tenant_ids in offers:
        item = ItemCreate(
            name=name,
            description=description,
            category_id=category.id,
            template_version_id=version.id,
            price_monthly=Decimal(price),
            tenant_ids=tenant_ids,
        )
        catalog.create_item(session, author, item)
    _approvals(session, author)


def _approvals(session: Session, operator: Principal) -> None:
    """Acme's chain: its group admin approves every order, the platform admin too from
    1,000 a month on."""
    acme = session.scalars(select(Tenant).where(Tenant.name == "Acme Group")).one()
    group_admin = session.scalars(select(User).where(User.username == "acme-group-admin")).one()
    stages = [
        order_schemas.Stage(name="Acme group admin", approvers=[group_admin.id]),
        order_schemas.Stage(name="Platform", approvers=[operator.user_id], min_cost=Decimal(1000)),
    ]
    policy = order_schemas.PolicyCreate(tenant_id=acme.id, name="Acme orders", stages=stages)
    approvals.create_policy(session, operator, policy)


def _size(flavors: Sequence[Flavor], name: str, label: str, default: int = 0) -> dict:
    """A choice among the demo flavors, by id (what the spec's ``flavor_id`` takes), shown
    by name and size."""
    return {
        "name": name,
        "type": "choice",
        "label": label,
        "choices": [f.id for f in flavors],
        "choice_labels": {
            f.id: f"{f.name} ({f.vcpus} vCPU, {f.memory_mb // 1024} GB)" for f in flavors
        },
        "default": flavors[default].id,
    }


def _number(name: str, label: str, least: int, most: int, default: int) -> dict:
    return {
        "name": name,
        "type": "integer",
        "label": label,
        "minimum": least,
        "maximum": most,
        "default": default,
    }


def _linux_vm(flavors: Sequence[Flavor], image: Image, most: int = 5) -> dict:
    return {
        "parameters": [_size(flavors, "flavor", "Size"), _number("count", "Machines", 1, most, 1)],
        "spec": {
            "flavor_id": {"param": "flavor"},
            "image_id": image.id,
            "count": {"param": "count"},
        },
    }


def _templates(flavors: Sequence[Flavor], image: Image, zone_id: str) -> list[TemplateCreate]:
    """A VM (size and count); a bundle of web servers (the first with an EIP) and a
    database with a data volume, on a network of their own; a partner's bucket."""
    web = {"name": "web", "flavor_id": flavors[1].id, "image_id": image.id}
    database = {"name": "db", "flavor_id": {"param": "db_flavor"}, "image_id": image.id}
    bucket = {"name": "bucket", "type": "string", "label": "Bucket name", "required": True}
    definitions = [
        {"name": "Linux VM", "kind": "instance"} | _linux_vm(flavors, image),
        {
            "name": "Web stack",
            "kind": "bundle",
            "parameters": [
                _number("web_count", "Web servers", 1, 4, 2),
                _size(flavors, "db_flavor", "Database size", default=-1),
                _number("db_disk", "Database disk (GB)", 20, 500, 50),
            ],
            "spec": {
                "network": {
                    "zone_id": zone_id,
                    "cidr": "10.50.0.0/16",
                    "vxnet_cidr": "10.50.1.0/24",
                },
                "instances": [web | {"count": {"param": "web_count"}}, database],
                "volumes": [{"instance": "db", "size_gb": {"param": "db_disk"}, "name": "db-data"}],
                "eip": {"instance": "web"},
            },
        },
        {
            "name": "Object storage bucket",
            "kind": "external",
            "parameters": [
                bucket | {"pattern": "[a-z0-9][a-z0-9-]{2,62}"},
                _number("size_gb", "Size (GB)", 100, 10000, 100),
            ],
            "spec": {
                "webhook_url": "https://storage.example.com/hooks/buckets",
                "bucket": {"param": "bucket"},
                "size_gb": {"param": "size_gb"},
            },
        },
    ]
    return [TemplateCreate.model_validate(d) for d in definitions]
