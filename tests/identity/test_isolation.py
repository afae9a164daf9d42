"""A tenant never sees or touches another tenant's objects: 404, never 403, never data."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api
from tests.support.network import port, public_pool, sdn_zone, vpc, vxnet
from yunguan.billing.models import BillingAccount, Invoice, PlanSubscription, Vendor
from yunguan.core import audit
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity import service
from yunguan.identity.models import Tenant, User
from yunguan.identity.roles import ROLE_NAMES, ROLES
from yunguan.identity.schemas import TenantCreate
from yunguan.identity.scope import Principal

PLATFORM = Principal(
    user_id="u-system",
    username="system",
    tenant_id="",
    tenant_path="/",
    roles=frozenset({"platform-admin"}),
)

# Every member route of the API and a valid request to it; ``ctx`` holds ids of tenant B's
# objects (the victim) and of tenant A (the caller's own).
MEMBER_ROUTES: dict[tuple[str, str], Callable[[dict], dict[str, Any]] | None] = {
    ("GET", "/tenants/{tenant_id}"): None,
    ("PATCH", "/tenants/{tenant_id}"): lambda ctx: {"name": "renamed"},
    ("DELETE", "/tenants/{tenant_id}"): None,
    ("POST", "/tenants/{tenant_id}/actions"): lambda ctx: {
        "action": "move",
        "parent_id": ctx["own_child"],
    },
    ("GET", "/users/{user_id}"): None,
    ("PATCH", "/users/{user_id}"): lambda ctx: {"display_name": "owned"},
    ("DELETE", "/users/{user_id}"): None,
    ("POST", "/users/{user_id}/actions"): lambda ctx: {"action": "disable"},
    ("GET", "/groups/{group_id}"): None,
    ("PATCH", "/groups/{group_id}"): lambda ctx: {"name": "renamed"},
    ("DELETE", "/groups/{group_id}"): None,
    ("POST", "/groups/{group_id}/actions"): lambda ctx: {
        "action": "add-member",
        "user_id": ctx["own_user"],
    },
    ("GET", "/audit-events/{event_id}"): None,
    ("GET", "/operations/{operation_id}"): None,
    ("GET", "/placement-groups/{placement_group_id}"): None,
    ("DELETE", "/placement-groups/{placement_group_id}"): None,
    ("GET", "/quotas/{tenant_id}"): None,
    ("PATCH", "/quotas/{tenant_id}"): lambda ctx: {"resource": "vcpus", "guarantee": 1},
    ("GET", "/vpcs/{item_id}/topology"): None,
    ("POST", "/eips/{item_id}/actions"): lambda ctx: {"action": "unbind"},
    ("POST", "/instances/{item_id}/actions"): lambda ctx: {"action": "stop"},
    ("GET", "/instances/{item_id}/events"): None,
    ("GET", "/instances/{item_id}/console"): None,
    ("POST", "/volumes/{item_id}/actions"): lambda ctx: {"action": "detach"},
    ("GET", "/webhooks/{item_id}"): None,
    ("PATCH", "/webhooks/{item_id}"): lambda ctx: {"description": "owned"},
    ("DELETE", "/webhooks/{item_id}"): None,
    ("GET", "/webhooks/{item_id}/deliveries"): None,
    ("GET", "/approval-policies/{item_id}"): None,
    ("PATCH", "/approval-policies/{item_id}"): lambda ctx: {"name": "renamed"},
    ("DELETE", "/approval-policies/{item_id}"): None,
    ("GET", "/orders/{item_id}"): None,
    ("POST", "/orders/{item_id}/actions"): lambda ctx: {"action": "comment", "comment": "x"},
    ("GET", "/service-instances/{item_id}"): None,
    ("POST", "/service-instances/{item_id}/actions"): lambda ctx: {"action": "unsubscribe"},
    ("POST", "/service-instances/{item_id}/change-orders"): lambda ctx: {
        "flavor_id": ctx["flavor"]
    },
    ("GET", "/billing-accounts/{item_id}"): None,
    ("POST", "/billing-accounts/{item_id}/actions"): lambda ctx: {
        "action": "redeem-coupon",
        "code": "ANY",
    },
    ("GET", "/invoices/{item_id}"): None,
    ("GET", "/vendors/{item_id}"): None,
    ("GET", "/plan-subscriptions/{item_id}"): None,
    ("PATCH", "/plan-subscriptions/{item_id}"): lambda ctx: {"quantity": 2},
    ("DELETE", "/plan-subscriptions/{item_id}"): None,
}
# tenant resources of the network: read, rename, delete
_OWNED = ("vpcs", "vxnets", "ports", "security-groups", "eips", "images", "instances")
_OWNED += ("volumes", "snapshots")
for _noun in _OWNED:
    MEMBER_ROUTES[("GET", f"/{_noun}/{{item_id}}")] = None
    MEMBER_ROUTES[("PATCH", f"/{_noun}/{{item_id}}")] = lambda ctx: {"name": "renamed"}
    MEMBER_ROUTES[("DELETE", f"/{_noun}/{{item_id}}")] = None
# Infrastructure: only for platform administrators (403 for everyone else, whose tenant
# owns none of it). Zones are readable by the tenants that may use them (tests/inventory).
_NOUNS = ("regions", "zones", "pods", "clusters", "hosts", "storage-pools", "placement-policies")
_NOUNS += ("vlan-pools", "ip-pools", "providers", "flavors", "categories", "catalog-items")
INFRASTRUCTURE = {
    (method, f"/{noun}/{{item_id}}") for noun in _NOUNS for method in ("GET", "PATCH", "DELETE")
} - {("GET", "/zones/{item_id}"), ("GET", "/flavors/{item_id}")}
# the catalog: templates are the platform's; categories and items are read by every tenant
# (which items, tests/catalog/test_visibility.py)
INFRASTRUCTURE -= {("GET", "/categories/{item_id}"), ("GET", "/catalog-items/{item_id}")}
INFRASTRUCTURE |= {
    ("GET", "/service-templates/{item_id}"),
    ("PATCH", "/service-templates/{item_id}"),
    ("GET", "/service-templates/{item_id}/versions"),
    ("POST", "/service-templates/{item_id}/versions"),
    ("GET", "/service-templates/{item_id}/versions/{version}"),
    ("PATCH", "/service-templates/{item_id}/versions/{version}"),
    ("POST", "/service-templates/{item_id}/versions/{version}/actions"),
}
INFRASTRUCTURE |= {("GET", f"/{noun}/{{item_id}}/capacity") for noun in _NOUNS[:5]} | {
    ("POST", "/storage-pools/{item_id}/actions"),
    ("GET", "/hosts/{item_id}/evacuation-plan"),
    ("GET", "/placement/claims/{claim_id}"),
    ("DELETE", "/placement/claims/{claim_id}"),
    ("POST", "/quotas/reservations/{reservation_id}/actions"),
    ("GET", "/ip-pools/{item_id}/addresses"),
    ("POST", "/ip-pools/{item_id}/addresses"),
    ("DELETE", "/ip-pools/{item_id}/addresses/{address}"),
    ("GET", "/sdn/hosts/{item_id}/document"),
    ("POST", "/sdn/hosts/{item_id}/learn"),
    ("GET", "/sdn/hosts/{item_id}"),
    ("POST", "/sdn/hosts/{item_id}/status"),
    ("POST", "/providers/{item_id}/actions"),
}
# billing: prices are read by everyone; what sets prices, discounts, accounts and money is
# the platform's
INFRASTRUCTURE |= {
    (method, f"/{noun}/{{item_id}}")
    for noun in ("discounts", "coupons")
    for method in ("GET", "PATCH", "DELETE")
} | {
    ("PATCH", "/price-books/{item_id}"),
    ("DELETE", "/price-books/{item_id}"),
    ("POST", "/price-books/{item_id}/actions"),
    ("PATCH", "/billing-accounts/{item_id}"),
    ("DELETE", "/billing-accounts/{item_id}"),
    ("POST", "/invoices/{item_id}/actions"),
    ("PATCH", "/vendors/{item_id}"),
    ("POST", "/usage-quarantine/{item_id}/actions"),
}
INFRASTRUCTURE_ACTIONS = {"quotas": "commit", "providers": "sync", "service-templates": "submit"}
INFRASTRUCTURE_ACTIONS |= {"price-books": "publish", "invoices": "finalize"}
INFRASTRUCTURE_ACTIONS |= {"usage-quarantine": "discard"}
INFRASTRUCTURE_BODIES = {
    "/actions": lambda path: {
        "action": next((a for n, a in INFRASTRUCTURE_ACTIONS.items() if n in path), "refresh")
    },
    "/addresses": lambda path: {"owner_id": "i-1"},
    "/learn": lambda path: {"destinations": []},
    "/status": lambda path: {"applied_version": 1, "routers": 0, "entries": 0},
}
NOT_TENANT_OWNED = {
    ("GET", "/roles/{role_name}"),
    ("GET", "/zones/{item_id}"),
    ("GET", "/flavors/{item_id}"),  # sizes every tenant may use
    ("GET", "/categories/{item_id}"),
    ("GET", "/catalog-items/{item_id}"),
    ("GET", "/price-books/{item_id}"),  # prices every tenant may read
    # a notification is its user's alone, whatever the roles (tests/notifications)
    ("GET", "/notifications/{item_id}"),
    ("POST", "/notifications/{item_id}/actions"),
} | INFRASTRUCTURE
PARAM_TO_OBJECT = {
    "tenant_id": "tenant",
    "user_id": "user",
    "group_id": "group",
    "event_id": "event",
    "operation_id": "operation",
    "placement_group_id": "placement_group",
}


@pytest.fixture
def two_tenants(admin: Api, root_id: str, db) -> dict[str, Any]:
    a, b = admin.tenant(root_id, "A"), admin.tenant(root_id, "B")
    a_admin = admin.as_user(a["id"], "a-admin", ["tenant-admin"])
    own_child = admin.tenant(a["id"], "a-child")
    own_user = admin.user(a["id"], "a-member")
    b_user = admin.user(b["id"], "b-member")
    b_child = admin.tenant(b["id"], "b-child")
    b_group = admin.ok(admin.post("/groups", {"name": "g", "tenant_id": b["id"]}), 201)
    b_placement_group = admin.ok(
        admin.post("/placement-groups", {"name": "pg", "tenant_id": b["id"], "policy": "affinity"}),
        201,
    )
    site = sdn_zone(admin, hosts=1)
    public_pool(admin, site["zone"]["id"])
    b_vpc = vpc(admin, site["zone"]["id"], tenant_id=b["id"])
    b_vxnet = vxnet(admin, b_vpc["id"], "192.168.1.0/24")
    b_port = port(admin, b_vxnet["id"], site["hosts"][0]["id"])
    b_sg = {"name": "sg", "tenant_id": b["id"]}
    b_sg = admin.ok(admin.post("/security-groups", b_sg), 201)
    b_eip = admin.ok(admin.post("/eips", {"tenant_id": b["id"]}), 201)
    b_webhook = {"url": "https://hooks.b.test/", "tenant_id": b["id"]}
    b_webhook = admin.ok(admin.post("/webhooks", b_webhook), 201)
    b_stages = [{"name": "lead", "approvers": [b_user["id"]]}]
    b_policy = {"tenant_id": b["id"], "name": "b", "stages": b_stages}
    b_policy = admin.ok(admin.post("/approval-policies", b_policy), 201)
    from yunguan.compute.models import Flavor, Image, Instance, Snapshot, Volume
    from yunguan.orders.models import Order, ServiceInstance
    from yunguan.workflows import service as operations

    with db.session() as session:
        flavor = Flavor(id=new_id("flv"), name="s1", vcpus=1, memory_mb=512)
        b_image = Image(id=new_id("img"), tenant_id=b["id"], name="own", locations={})
        session.add_all([flavor, b_image])
        session.flush()
        b_instance = Instance(
            id=new_id("i"),
            tenant_id=b["id"],
            name="vm",
            flavor_id=flavor.id,
            image_id=b_image.id,
            zone_id=site["zone"]["id"],
            state="running",
        )
        b_volume = Volume(
            id=new_id("vol"),
            tenant_id=b["id"],
            name="data",
            size_gb=1,
            zone_id=site["zone"]["id"],
            state="in-use",
        )
        b_snapshot = Snapshot(
            id=new_id("snap"), tenant_id=b["id"], volume_id=b_volume.id, name="s", size_gb=1
        )
        b_order = Order(
            id=new_id("ord"),
            tenant_id=b["id"],
            requested_by=b_user["id"],
            item_id="ci-x",
            template_version_id="stv-x",
            name="web",
        )
        b_service = ServiceInstance(
            id=new_id("si"),
            tenant_id=b["id"],
            order_id=b_order.id,
            item_id="ci-x",
            name="web",
            kind="instance",
            state="active",
        )
        session.add_all([b_instance, b_volume, b_snapshot, b_order, b_service])
        b_account = BillingAccount(id=new_id("ba"), tenant_id=b["id"], tenant_path=b["path"])
        b_vendor = Vendor(id=new_id("vnd"), name="b", tenant_id=b["id"], tenant_path=b["path"])
        b_plan = PlanSubscription(
            id=new_id("psub"),
            tenant_id=b["id"],
            tenant_path=b["path"],
            plan="basic",
            started_at=datetime(2027, 3, 1, tzinfo=UTC),
        )
        session.add_all([b_account, b_vendor, b_plan])
        session.flush()
        start = datetime(2027, 3, 1, tzinfo=UTC)
        b_invoice = Invoice(
            id=new_id("inv"),
            account_id=b_account.id,
            tenant_id=b["id"],
            tenant_path=b["path"],
            period="2027-03",
            period_start=start,
            period_end=start,
            currency="CNY",
            finalize_after=start,
        )
        session.add(b_invoice)
        operation = operations.create_operation(
            session,
            kind="tenant.delete",
            tenant_id=b["id"],
            target_type="tenant",
            target_id=b_child["id"],
            requested_by=None,
        )
        event = audit.record(
            session, audit.AuditNote(action="x", tenant_id=b["id"]), result="success"
        )
    return {
        "caller": a_admin,
        "a": a,
        "own_child": own_child["id"],
        "own_user": own_user["id"],
        "tenant": b["id"],
        "user": b_user["id"],
        "group": b_group["id"],
        "placement_group": b_placement_group["id"],
        "event": event.id,
        "operation": operation.id,
        "b_child": b_child["id"],
        "vpcs": b_vpc["id"],
        "vxnets": b_vxnet["id"],
        "ports": b_port["id"],
        "security-groups": b_sg["id"],
        "eips": b_eip["id"],
        "images": b_image.id,
        "instances": b_instance.id,
        "volumes": b_volume.id,
        "snapshots": b_snapshot.id,
        "webhooks": b_webhook["id"],
        "approval-policies": b_policy["id"],
        "orders": b_order.id,
        "service-instances": b_service.id,
        "billing-accounts": b_account.id,
        "invoices": b_invoice.id,
        "vendors": b_vendor.id,
        "plan-subscriptions": b_plan.id,
        "flavor": flavor.id,
    }


def test_every_member_route_is_covered(app) -> None:
    routes = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in app.openapi()["paths"].items()
        if "{" in path
        for method in operations
    }
    assert routes == set(MEMBER_ROUTES) | NOT_TENANT_OWNED


@pytest.mark.parametrize(("method", "template"), sorted(INFRASTRUCTURE))
def test_infrastructure_is_for_platform_administrators(
    two_tenants: dict[str, Any], admin: Api, method: str, template: str
) -> None:
    path = re.sub(r"\{[^}]+\}", "x-1", template.replace("{version}", "1"))
    ending = "/" + path.rsplit("/", 1)[-1]
    body = INFRASTRUCTURE_BODIES[ending](path) if ending in INFRASTRUCTURE_BODIES else {}
    answer = two_tenants["caller"].call(method, path, json=body if method != "GET" else None)
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize(("method", "template"), sorted(MEMBER_ROUTES))
def test_other_tenants_objects_answer_404(
    two_tenants: dict[str, Any], admin: Api, method: str, template: str
) -> None:
    param = template.split("{")[1].split("}")[0]
    owner = template.split("/")[1] if param == "item_id" else PARAM_TO_OBJECT[param]
    path = template.replace(f"{{{param}}}", two_tenants[owner])
    build = MEMBER_ROUTES[(method, template)]
    body = build(two_tenants) if build else None
    answer = two_tenants["caller"].call(method, path, json=body)
    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == "not-found"
    # and nothing changed for its owner
    if method != "GET":
        seen = admin.get(re.sub(r"/(actions|change-orders)$", "", path))
        assert seen.status_code == 200


def test_references_to_other_tenants_answer_404(two_tenants: dict[str, Any]) -> None:
    caller, b = two_tenants["caller"], two_tenants["tenant"]
    attempts = [
        caller.post("/tenants", {"name": "squat", "parent_id": b}),
        caller.post("/users", {"username": "plant", "password": "Plant-Passw0rd!", "tenant_id": b}),
        caller.post("/groups", {"name": "g2", "tenant_id": b}),
        caller.post(
            f"/tenants/{two_tenants['own_child']}/actions", {"action": "move", "parent_id": b}
        ),
    ]
    assert [a.status_code for a in attempts] == [404] * 4


def test_collections_show_only_the_callers_subtree(two_tenants: dict[str, Any]) -> None:
    caller = two_tenants["caller"]
    foreign = {two_tenants[k] for k in ("tenant", "user", "group", "event", "operation", "b_child")}
    for collection in ("/tenants", "/users", "/groups", "/audit-events", "/operations"):
        items = caller.ok(caller.get(collection, params={"limit": 1000}))["items"]
        assert not {item["id"] for item in items} & foreign, collection
    own = {t["id"] for t in caller.ok(caller.get("/tenants"))["items"]}
    assert own == {two_tenants["a"]["id"], two_tenants["own_child"]}
    filtered = caller.ok(caller.get("/users", params={"tenant_id": two_tenants["tenant"]}))
    assert filtered["items"] == []


# --- property: any tree, any principal -----------------------------------------------------

trees = st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=12).map(
    lambda picks: [min(p, i) for i, p in enumerate(picks)]  # node i+1's parent is 0..i
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tree=trees,
    where=st.integers(min_value=0),
    roles=st.sets(st.sampled_from(ROLE_NAMES), min_size=1, max_size=2),
)
def test_visibility_is_exactly_the_subtree(
    db, root_id: str, tree: list[int], where: int, roles: set[str]
) -> None:
    with db.session() as session:
        top = service.create_tenant(
            session, PLATFORM, TenantCreate(name=new_id("tree"), parent_id=root_id)
        )
        nodes = [top]
        for parent_index in tree:
            nodes.append(
                service.create_tenant(
                    session,
                    PLATFORM,
                    TenantCreate(name=new_id("n"), parent_id=nodes[parent_index].id),
                )
            )
        for node in nodes:
            session.add(
                User(
                    id=new_id("u"),
                    username=new_id("user"),
                    tenant_id=node.id,
                    password_hash="-",
                    roles=["member"],
                )
            )
            audit.record(
                session, audit.AuditNote(action="probe", tenant_id=node.id), result="success"
            )
        session.flush()
        home = nodes[where % len(nodes)]
        if "platform-admin" in roles:
            home = session.get(Tenant, root_id)
        principal = Principal(
            user_id=new_id("u"),
            username="probe",
            tenant_id=home.id,
            tenant_path=home.path,
            roles=frozenset(roles),
        )
        all_pages = PageParams(limit=1000)
        ours = {n.id for n in nodes}
        if principal.is_platform_admin:
            expected = ours
        else:
            expected = {n.id for n in nodes if n.path.startswith(home.path)}
        seen_tenants, _ = service.list_tenants(session, principal, all_pages)
        assert {t.id for t in seen_tenants} & ours == expected
        assert principal.is_platform_admin or {t.id for t in seen_tenants} <= expected
        seen_users, _ = service.list_users(session, principal, all_pages)
        assert {u.tenant_id for u in seen_users} & ours == expected
        assert principal.is_platform_admin or {u.tenant_id for u in seen_users} <= expected
        seen_events, _ = service.list_audit_events(session, principal, all_pages)
        readers = {
            r for r in roles if "audit:read" in ROLES[r]["permissions"] or r == "platform-admin"
        }
        assert {e.tenant_id for e in seen_events} & ours == (expected if readers else set())
        for node in nodes:
            visible = node.id in expected
            try:
                service.get_tenant(session, principal, node.id)
                assert visible
            except Exception as exc:
                assert not visible and type(exc).__name__ == "NotFound"
        session.rollback()
