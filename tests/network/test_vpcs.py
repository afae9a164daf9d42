"""VPCs, vxnets, ports and EIPs through the API: validation, quotas, overlapping CIDRs."""

from tests.support.api import Api
from tests.support.network import port, public_pool, sdn_zone, vpc, vxnet
from tests.support.quotas import node, set_limit


def test_vpcs_of_different_tenants_may_use_the_same_addresses(admin: Api, root_id: str) -> None:
    site = sdn_zone(admin)
    zone_id, host = site["zone"]["id"], site["hosts"][1]["id"]
    addresses = []
    for name in ("Acme", "Globex"):
        tenant = admin.tenant(root_id, name)
        member = admin.as_user(tenant["id"], f"{name.lower()}-member")
        net = vpc(member, zone_id, "10.10.0.0/16")
        sub = vxnet(member, net["id"], "10.10.1.0/24")
        assert sub["gateway_ip"] == "10.10.1.1"
        addresses.append((sub["vni"], port(admin, sub["id"], host, tenant_id=None)["ip"]))
    (vni_a, ip_a), (vni_b, ip_b) = addresses
    assert ip_a == ip_b == "10.10.1.2" and vni_a != vni_b  # same address, own segment


def test_bad_networks_get_clear_errors(admin: Api, root_id: str) -> None:
    site = sdn_zone(admin, vnis=(100, 103))  # the VPC's transit segment and three vxnets
    zone_id = site["zone"]["id"]
    for cidr, code in (
        ("10.0.0.0/8", "bad-cidr"),  # too large
        ("10.0.0.0/29", "bad-cidr"),  # too small
        ("8.8.0.0/16", "bad-cidr"),  # not private
        ("169.254.0.0/16", "bad-cidr"),  # link-local: the metadata address lives there
        ("10.0.0.1/16", "bad-cidr"),  # host bits set
        ("fd00::/48", "bad-cidr"),  # VPCs are IPv4
    ):
        answer = admin.post("/vpcs", {"name": cidr, "zone_id": zone_id, "cidr": cidr})
        assert (answer.status_code, answer.json()["code"]) == (400, code), cidr
    net = vpc(admin, zone_id, "172.16.0.0/16")
    vxnet(admin, net["id"], "172.16.0.0/24")
    for cidr, status, code in (
        ("172.16.0.128/25", 409, "overlap"),
        ("172.16.0.0/16", 409, "overlap"),
        ("172.17.0.0/24", 400, "bad-cidr"),  # outside the VPC
        ("172.16.9.0/30", 400, "bad-cidr"),  # too small for a vxnet
    ):
        answer = admin.post("/vxnets", {"name": cidr, "vpc_id": net["id"], "cidr": cidr})
        assert (answer.status_code, answer.json()["code"]) == (status, code), cidr
    vxnet(admin, net["id"], "172.16.1.0/24")
    vxnet(admin, net["id"], "172.16.2.0/24")
    exhausted = admin.post("/vxnets", {"name": "x", "vpc_id": net["id"], "cidr": "172.16.3.0/24"})
    assert (exhausted.status_code, exhausted.json()["code"]) == (409, "segments-exhausted")
    assert len(admin.ok(admin.get("/vxnets", params={"vpc_id": net["id"]}))["items"]) == 3


def test_a_vpc_holds_at_most_253_vxnets(admin: Api, db) -> None:
    site = sdn_zone(admin, vnis=(1, 1000))
    net = vpc(admin, site["zone"]["id"], "10.20.0.0/16")
    for n in range(253):
        vxnet(admin, net["id"], f"10.20.{n}.0/24")
    answer = admin.post(
        "/vxnets", {"name": "one-more", "vpc_id": net["id"], "cidr": "10.20.253.0/24"}
    )
    assert (answer.status_code, answer.json()["code"]) == (409, "too-many-vxnets")


def test_vpcs_vxnets_and_eips_count_against_quota(admin: Api, root_id: str) -> None:
    site = sdn_zone(admin)
    zone_id = site["zone"]["id"]
    public_pool(admin, zone_id)
    tenant = admin.tenant(root_id, "Acme")
    for resource in ("vpcs", "vxnets", "public_ips"):
        set_limit(admin, tenant["id"], resource, guarantee=1, borrow_limit=0)
    member = admin.as_user(tenant["id"], "acme-member")
    net = vpc(member, zone_id, "10.1.0.0/16")
    refused = member.post("/vpcs", {"name": "two", "zone_id": zone_id, "cidr": "10.2.0.0/16"})
    assert (refused.status_code, refused.json()["code"]) == (409, "quota-exceeded")
    sub = vxnet(member, net["id"], "10.1.1.0/24")
    assert (
        member.post(
            "/vxnets", {"name": "b", "vpc_id": net["id"], "cidr": "10.1.2.0/24"}
        ).status_code
        == 409
    )
    eip = member.ok(member.post("/eips", {}), 201)
    assert eip["address"] == "203.0.113.1"
    assert member.post("/eips", {}).status_code == 409
    assert [node(admin, tenant["id"], r)["used"] for r in ("vpcs", "vxnets", "public_ips")] == [
        1,
        1,
        1,
    ]
    # deleting gives the quota back; a VPC with vxnets cannot go first
    assert member.delete(f"/vpcs/{net['id']}").json()["code"] == "in-use"
    for path in (f"/eips/{eip['id']}", f"/vxnets/{sub['id']}", f"/vpcs/{net['id']}"):
        assert member.delete(path).status_code == 204, path
    assert [node(admin, tenant["id"], r)["used"] for r in ("vpcs", "vxnets", "public_ips")] == [
        0,
        0,
        0,
    ]


def test_eips_bind_to_one_port_or_one_vpc_of_their_tenant(admin: Api, root_id: str) -> None:
    site = sdn_zone(admin)
    zone_id, host = site["zone"]["id"], site["hosts"][1]["id"]
    public_pool(admin, zone_id)
    acme, globex = (admin.tenant(root_id, n) for n in ("Acme", "Globex"))
    member = admin.as_user(acme["id"], "acme-member")
    other = admin.as_user(globex["id"], "globex-member")
    net = vpc(member, zone_id, "10.1.0.0/16")
    nic = port(admin, vxnet(member, net["id"], "10.1.1.0/24")["id"], host)
    eip = member.ok(member.post("/eips", {}), 201)
    mine = member.ok(
        member.post(f"/eips/{eip['id']}/actions", {"action": "bind", "port_id": nic["id"]})
    )
    assert mine["port_id"] == nic["id"]
    again = member.post(f"/eips/{eip['id']}/actions", {"action": "bind", "vpc_id": net["id"]})
    assert (again.status_code, again.json()["code"]) == (409, "bound")
    theirs = other.ok(other.post("/eips", {}), 201)
    foreign = other.post(f"/eips/{theirs['id']}/actions", {"action": "bind", "port_id": nic["id"]})
    assert foreign.status_code == 404  # another tenant's port does not exist for them
    assert other.get(f"/vpcs/{net['id']}").status_code == 404
    member.ok(member.post(f"/eips/{eip['id']}/actions", {"action": "unbind"}))
    snat = member.ok(
        member.post(f"/eips/{eip['id']}/actions", {"action": "bind", "vpc_id": net["id"]})
    )
    assert snat["vpc_id"] == net["id"] and snat["port_id"] is None
    pool_id = eip["ip_pool_id"]
    held = admin.delete(f"/ip-pools/{pool_id}/addresses/{eip['address']}")
    assert (held.status_code, held.json()["code"]) == (409, "in-use")  # the EIP holds it
    tree = member.ok(member.get(f"/vpcs/{net['id']}/topology"))
    assert tree["snat_eip"] == eip["address"] and tree["vxnets"][0]["ports"][0]["ip"] == "10.1.1.2"


def test_ports_take_free_addresses_and_give_them_back(admin: Api, root_id: str) -> None:
    site = sdn_zone(admin)
    net = vpc(admin, site["zone"]["id"], "10.5.0.0/16")
    sub = vxnet(admin, net["id"], "10.5.0.0/29")  # .1 gateway, .2-.6 for ports
    made = [port(admin, sub["id"]) for _ in range(5)]
    assert [p["ip"] for p in made] == [f"10.5.0.{n}" for n in range(2, 7)]
    full = admin.post("/ports", {"vxnet_id": sub["id"]})
    assert (full.status_code, full.json()["code"]) == (409, "pool-exhausted")
    admin.ok(admin.delete(f"/ports/{made[1]['id']}"), 204)
    assert port(admin, sub["id"])["ip"] == "10.5.0.3"
    taken = admin.post("/ports", {"vxnet_id": sub["id"], "ip": "10.5.0.4"})
    assert (taken.status_code, taken.json()["code"]) == (409, "address-in-use")
    outside = admin.post("/ports", {"vxnet_id": sub["id"], "ip": "10.6.0.4"})
    assert (outside.status_code, outside.json()["code"]) == (400, "bad-address")
    both = admin.post("/ports", {"vxnet_id": sub["id"], "ip_pool_id": sub["ip_pool_id"]})
    assert both.status_code == 400


def test_a_tenant_owning_network_resources_cannot_be_deleted(admin: Api, root_id: str) -> None:
    tenant = admin.tenant(root_id, "Holder")
    admin.ok(admin.post("/security-groups", {"name": "sg", "tenant_id": tenant["id"]}), 201)
    answer = admin.delete(f"/tenants/{tenant['id']}")
    assert (answer.status_code, answer.json()["code"]) == (409, "tenant-not-empty")
    assert "network resource" in answer.json()["detail"]
    assert admin.ok(admin.get(f"/tenants/{tenant['id']}"))["state"] == "active"
