"""Bundles: one order makes a network of its own (a VPC and a vxnet), instances on it,
volumes attached to the instances of an entry and an EIP bound to the first instance of
another; releasing gives everything back in order, and so does a failed fulfilment."""

import time

import pytest

from tests.network.test_portal import Portal
from tests.orders.conftest import fulfilled, offered, order
from tests.orders.test_subscriptions import tick
from tests.support import network
from tests.support.api import Api
from tests.support.compute import simulated_zone
from tests.support.quotas import node, set_limit
from tests.support.waiting import wait_operation
from yunguan.catalog import service as catalog
from yunguan.orders import lifecycle, plans, provisioning
from yunguan.orders.models import Order

pytestmark = pytest.mark.usefixtures("workflows")
COUNTED = ("vpcs", "vxnets", "public_ips", "volumes", "volume_gb", "vcpus")


def stack(place: dict, **changes: dict) -> dict:
    """Two web servers with the EIP on the first, a database with a 20 GB data volume, on
    the bundle's own 10.30.1.0/24."""
    box = {"flavor_id": place["flavor"]["id"], "image_id": place["image"]["id"]}
    spec = {
        "network": {
            "zone_id": place["zone"]["id"],
            "cidr": "10.30.0.0/16",
            "vxnet_cidr": "10.30.1.0/24",
        },
        "instances": [{"name": "web", "count": 2} | box, {"name": "db"} | box],
        "volumes": [{"instance": "db", "size_gb": 20}],
        "eip": {"instance": "web", "bandwidth_mbps": 20},
    }
    return {"name": "web stack", "kind": "bundle", "parameters": [], "spec": spec | changes}


@pytest.fixture
def bundle(admin: Api, root_id: str, place: dict) -> dict:
    network.public_pool(admin, place["zone"]["id"])
    return offered(admin, root_id, stack(place), "Web stack")


def resources(api: Api, service: dict) -> dict[str, list[dict]]:
    """The service's resources by type, each as the API shows it."""
    paths = {"vpc": "vpcs", "vxnet": "vxnets", "instance": "instances", "volume": "volumes"}
    found: dict[str, list[dict]] = {}
    for r in service["resources"]:
        path = paths.get(r["type"], "eips")
        found.setdefault(r["type"], []).append(api.ok(api.get(f"/{path}/{r['id']}")))
    return found


def used(admin: Api, tenant_id: str) -> list[int]:
    return [node(admin, tenant_id, r)["used"] for r in COUNTED]


def release_completely(api: Api, service_id: str, timeout: float = 60) -> dict:
    """Lifecycle ticks until the service's resources are all gone (each tick gives back
    what it can)."""
    deadline = time.monotonic() + timeout
    while not (found := api.ok(api.get(f"/service-instances/{service_id}")))["released_at"]:
        assert time.monotonic() < deadline, found
        tick()
        time.sleep(0.3)
    return found


def test_a_bundle_makes_its_network_volumes_and_eip_and_gives_them_back(
    app, admin: Api, member: Api, bundle: dict, team: dict
) -> None:
    done = fulfilled(member, order(member, bundle, name="shop"))
    service = member.ok(member.get(f"/service-instances/{done['service_instance_id']}"))
    assert service["state"] == "active"
    made = resources(member, service)
    assert {kind: len(rows) for kind, rows in made.items()} == {
        "vpc": 1,
        "vxnet": 1,
        "instance": 3,
        "eip": 1,
        "volume": 1,
    }
    (vpc,), (vxnet,), (eip,), (volume,) = made["vpc"], made["vxnet"], made["eip"], made["volume"]
    assert vpc["cidr"] == "10.30.0.0/16" and vxnet["cidr"] == "10.30.1.0/24"
    web1, web2, db = made["instance"]
    assert [i["name"] for i in (web1, web2, db)] == ["web-1", "web-2", "db"]
    assert all(i["state"] == "running" and i["vxnet_id"] == vxnet["id"] for i in made["instance"])
    assert all(i["ip"].startswith("10.30.1.") for i in made["instance"])
    assert (volume["state"], volume["instance_id"], volume["size_gb"]) == ("in-use", db["id"], 20)
    assert eip["port_id"] == web1["port_id"] and eip["bandwidth_mbps"] == 20
    assert used(admin, team["id"]) == [1, 1, 1, 1, 20, 6]
    page = Portal(app, "dev").get(f"/services/{service['id']}")
    for shown in (vpc["cidr"], vxnet["cidr"], "20 GB as", eip["address"], f"/instances/{db['id']}"):
        assert shown in page, shown

    unsubscribe = {"action": "unsubscribe"}
    gone = member.ok(member.post(f"/service-instances/{service['id']}/actions", unsubscribe))
    assert gone["state"] == "releasing"
    release_completely(member, service["id"])
    for kind, rows in made.items():
        path = {"vpc": "vpcs", "vxnet": "vxnets", "instance": "instances", "volume": "volumes"}
        for row in rows:
            answer = member.get(f"/{path.get(kind, 'eips')}/{row['id']}")
            assert answer.status_code == 404 or answer.json()["state"] == "deleted", (kind, answer)
    assert used(admin, team["id"]) == [0] * len(COUNTED)


def test_a_bundle_is_checked_whole_when_ordered(
    admin: Api, root_id: str, member: Api, place: dict, team: dict
) -> None:
    wrong = stack(
        place,
        network={"zone_id": place["zone"]["id"], "cidr": "8.8.0.0/16"},
        volumes=[{"instance": "cache", "size_gb": 0}],
        eip={"instance": "nobody"},
    )
    network.public_pool(admin, place["zone"]["id"])
    item = offered(admin, root_id, wrong, "Broken stack")
    refused = member.post("/orders", {"item_id": item["id"], "name": "shop"})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid-spec"
    faults = {".".join(e["loc"]) for e in refused.json()["errors"]}
    assert faults == {"spec.volumes.0.size_gb"}  # the shape first: the references after

    fixed = stack(place, network=wrong["spec"]["network"], eip={"instance": "nobody"})
    item = offered(admin, root_id, fixed, "Still broken")
    refused = member.post("/orders", {"item_id": item["id"], "name": "shop"})
    assert refused.status_code == 422
    assert {".".join(e["loc"]) for e in refused.json()["errors"]} == {"spec.eip.instance"}

    unplaced = offered(admin, root_id, stack(place, network=None, volumes=[]), "No network")
    refused = member.post("/orders", {"item_id": unplaced["id"], "name": "shop"})
    assert refused.status_code == 422 and "binds to a port" in refused.json()["detail"]

    private = offered(admin, root_id, stack(place, network=wrong["spec"]["network"]), "Public")
    refused = member.post("/orders", {"item_id": private["id"], "name": "shop"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["spec", "network", "cidr"]

    set_limit(admin, team["id"], "public_ips", cap=0)
    good = offered(admin, root_id, stack(place), "Good stack")
    refused = member.post("/orders", {"item_id": good["id"], "name": "shop"})
    assert refused.status_code == 409 and refused.json()["code"] == "quota-exceeded"
    assert member.ok(member.get("/orders"))["items"] == []


def test_a_bundle_whose_volume_fails_fails_and_gives_everything_back(
    admin: Api, root_id: str, member: Api, team: dict
) -> None:
    """The instances run, the network and EIP are made, then the provider refuses the
    volume: the order fails, and everything is given back."""
    place = simulated_zone(admin, failures={"volumes": 1.0})
    network.public_pool(admin, place["zone"]["id"])
    placed = order(member, offered(admin, root_id, stack(place), "Web stack"), name="shop")
    operation = wait_operation(member, placed["operation_id"], timeout=60)
    assert operation["state"] == "failed" and "volume" in operation["error"], operation
    placed = member.ok(member.get(f"/orders/{placed['id']}"))
    assert placed["state"] == "failed"
    service = release_completely(member, placed["service_instance_id"])
    assert service["state"] == "failed"
    assert used(admin, team["id"]) == [0] * len(COUNTED)


def test_what_the_tenant_tied_to_its_own_is_kept_and_the_rest_released(
    admin: Api, member: Api, bundle: dict, team: dict
) -> None:
    """A port of the tenant's own on the bundle's vxnet: the release cannot take the vxnet
    (nor so its VPC); they are left to the tenant, marked, and the service is released."""
    done = fulfilled(member, order(member, bundle, name="shop"))
    service = member.ok(member.get(f"/service-instances/{done['service_instance_id']}"))
    made = resources(member, service)
    own = network.port(member, made["vxnet"][0]["id"])
    unsubscribe = {"action": "unsubscribe"}
    member.ok(member.post(f"/service-instances/{service['id']}/actions", unsubscribe))
    released = release_completely(member, service["id"])
    assert released["state"] == "released"
    kept = {r["type"]: r["kept"] for r in released["resources"] if "kept" in r}
    assert set(kept) == {"vxnet", "vpc"} and "ports" in kept["vxnet"], kept
    assert member.ok(member.get(f"/ports/{own['id']}"))["vxnet_id"] == made["vxnet"][0]["id"]
    assert used(admin, team["id"]) == [1, 1, 0, 0, 0, 0]  # the network is the tenant's now


def test_a_bundle_with_an_eip_and_no_volume_completes_once(
    db, member: Api, admin: Api, root_id: str, place: dict
) -> None:
    """The second phase of a bundle with an EIP and no volumes is recognised as done (a
    step run again after a crash binds nothing twice)."""
    network.public_pool(admin, place["zone"]["id"])
    lone = stack(place, volumes=[])
    done = fulfilled(member, order(member, offered(admin, root_id, lone, "Lone"), name="lone"))
    with db.session() as session:
        service = lifecycle.of_order(session, done["id"])
        order_row = session.get(Order, done["id"])
        kind = catalog.template_of(session, order_row.template_version_id).kind
        plan = plans.plan(kind, order_row.spec, order_row.name)
        assert plan.eip is not None and not plan.volumes
        assert provisioning.completed(session, service, plan)
