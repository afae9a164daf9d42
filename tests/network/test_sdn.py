"""The SDN controller: the right entries on the right hosts in both modes, learned entries
that expire and are invalidated, versioned documents with long-poll."""

import threading
import time
from datetime import timedelta

from tests.support.api import Api
from tests.support.network import document, port, public_pool, sdn_zone, vpc, vxnet
from yunguan.core import clock
from yunguan.network.sdn import learning, tables


def _vpc_with_ports(admin: Api, mode: str):
    """Hosts h00 (gateway) .. h03; a VPC with two vxnets and two ports on each of h01-h03."""
    site = sdn_zone(admin, hosts=4, gateways=1)
    hosts = [h["id"] for h in site["hosts"]]
    net = vpc(admin, site["zone"]["id"], "10.0.0.0/16", routing_mode=mode)
    subnets = [vxnet(admin, net["id"], f"10.0.{n}.0/24") for n in (1, 2)]
    ports = {h: [port(admin, s["id"], h) for s in subnets] for h in hosts[1:]}
    return site, hosts, net, subnets, ports


def _remote(doc: dict) -> set[str]:
    return {e["ip"] for v in doc["vpcs"] for e in v["remote_ports"]}


def test_full_mode_pushes_every_remote_port_to_every_host_of_the_vpc(admin: Api) -> None:
    _site, hosts, net, subnets, ports = _vpc_with_ports(admin, "full")
    doc = document(admin, hosts[1])
    (mine,) = doc["vpcs"]
    assert mine["mode"] == "full" and mine["router_mac"] == net["router_mac"]
    assert [x["gateway_ip"] for x in mine["vxnets"]] == ["10.0.1.1", "10.0.2.1"]
    assert {p["ip"] for p in mine["local_ports"]} == {p["ip"] for p in ports[hosts[1]]}
    others = {p["ip"]: p for h in hosts[2:] for p in ports[h]}
    assert _remote(doc) == set(others)
    vteps = {e["ip"]: e["vtep"] for e in mine["remote_ports"]}
    assert vteps[ports[hosts[3]][0]["ip"]] == "10.0.0.4"
    assert {e["vni"] for e in mine["remote_ports"]} == {s["vni"] for s in subnets}
    assert document(admin, hosts[0])["vpcs"][0]["role"] == "gateway"


def test_ondemand_hosts_learn_what_they_talk_to_and_forget_it(admin: Api, db) -> None:
    _site, hosts, net, subnets, ports = _vpc_with_ports(admin, "ondemand")
    doc = document(admin, hosts[1])
    (mine,) = doc["vpcs"]
    assert mine["remote_ports"] == [] and mine["gateways"] == ["10.0.0.1"]
    gateway = document(admin, hosts[0])
    assert len(_remote(gateway)) == 6  # the gateway holds the full table
    target = ports[hosts[2]][0]
    report = {"destinations": [{"vpc_id": net["id"], "ip": target["ip"]}]}
    report["destinations"] += [{"vpc_id": net["id"], "ip": "10.0.9.9"}]
    report["destinations"] += [{"vpc_id": net["id"], "ip": ports[hosts[1]][0]["ip"]}]
    answers = admin.ok(admin.post(f"/sdn/hosts/{hosts[1]}/learn", report))["destinations"]
    assert [a["granted"] for a in answers] == [True, False, False]
    learned = document(admin, hosts[1])
    assert learned["version"] > doc["version"]
    assert _remote(learned) == {target["ip"]}
    assert learned["vpcs"][0]["remote_ports"][0]["vtep"] == "10.0.0.3"
    assert _remote(document(admin, hosts[3])) == set()  # only the host that asked
    # moving the destination invalidates the entry; so does deleting it
    admin.ok(admin.patch(f"/ports/{target['id']}", {"host_id": hosts[3]}))
    moved = document(admin, hosts[1])
    assert _remote(moved) == set() and moved["version"] > learned["version"]
    admin.ok(admin.post(f"/sdn/hosts/{hosts[1]}/learn", report))
    assert document(admin, hosts[1])["vpcs"][0]["remote_ports"][0]["vtep"] == "10.0.0.4"
    gateway_vteps = {
        e["ip"]: e["vtep"] for e in document(admin, hosts[0])["vpcs"][0]["remote_ports"]
    }
    assert gateway_vteps[target["ip"]] == "10.0.0.4"  # the gateway's cached table followed
    admin.ok(admin.delete(f"/ports/{target['id']}"), 204)
    assert _remote(document(admin, hosts[1])) == set()
    assert len(_remote(document(admin, hosts[0]))) == 5
    # once the events are pruned, a cached table is read afresh
    added = port(admin, subnets[1]["id"], hosts[2])
    later = clock.now() + tables.KEEP + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    try:
        with db.session() as session:
            assert tables.prune(session) >= 1
    finally:
        clock.set_clock(None)
    admin.ok(admin.delete(f"/ports/{added['id']}"), 204)
    assert len(_remote(document(admin, hosts[0]))) == 5
    # entries live for their TTL, then the expiry pass removes them and tells the host
    other = ports[hosts[3]][1]
    report = {"destinations": [{"vpc_id": net["id"], "ip": other["ip"]}]}
    admin.ok(admin.post(f"/sdn/hosts/{hosts[1]}/learn", report))
    before = document(admin, hosts[1])
    assert _remote(before) == {other["ip"]}
    later = clock.now() + timedelta(seconds=301)
    clock.set_clock(lambda: later)
    try:  # shown until the expiry pass takes it away, which tells the host
        assert document(admin, hosts[1]) == before
        with db.session() as session:
            assert learning.expire(session) == 1
        after = document(admin, hosts[1])
        assert _remote(after) == set() and after["version"] > before["version"]
    finally:
        clock.set_clock(None)


def test_a_host_keeps_at_most_cap_learned_entries(admin: Api, db) -> None:
    _site, hosts, net, _subnets, ports = _vpc_with_ports(admin, "ondemand")
    remote = [p["ip"] for h in hosts[2:] for p in ports[h]]
    for ip in remote:  # one report at a time: the oldest grant goes first
        with db.session() as session:
            learning.learn(session, hosts[1], [(net["id"], ip)], ttl=timedelta(minutes=5), cap=2)
    assert _remote(document(admin, hosts[1])) == set(remote[-2:])


def test_documents_are_versioned_and_long_polled(admin: Api, root_id: str) -> None:
    site, hosts, net, subnets, ports = _vpc_with_ports(admin, "full")
    path = f"/sdn/hosts/{hosts[1]}/document"
    current = document(admin, hosts[1])["version"]
    unchanged = admin.get(path, params={"since": current, "wait": 0.3})
    assert unchanged.status_code == 304
    assert document(admin, hosts[1], since=current - 1)["version"] == current
    answers = []

    def poll() -> None:
        started = time.monotonic()
        answers.append((admin.get(path, params={"since": current, "wait": 20}), started))

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.5)
    made = port(admin, subnets[0]["id"], hosts[2])
    waiter.join(30)
    (answer, started) = answers[0]
    assert answer.status_code == 200 and made["ip"] in _remote(answer.json())
    assert time.monotonic() - started < 5  # woke on the change, not at the end of the wait
    # a host's document also shows its ports' security groups and EIPs
    member = admin.as_user(net["tenant_id"], "sdn-member")
    web = member.ok(member.post("/security-groups", {"name": "web"}), 201)
    rules = [{"direction": "ingress", "protocol": "tcp", "port_min": 80, "port_max": 80}]
    rules += [{"direction": "ingress", "remote_group_id": web["id"]}]
    member.ok(member.patch(f"/security-groups/{web['id']}", {"rules": rules}))
    nic = ports[hosts[1]][0]
    member.ok(member.patch(f"/ports/{nic['id']}", {"security_group_ids": [web["id"]]}))
    public_pool(admin, site["zone"]["id"])
    eip = member.ok(member.post("/eips", {}), 201)
    member.ok(member.post(f"/eips/{eip['id']}/actions", {"action": "bind", "port_id": nic["id"]}))
    doc = document(admin, hosts[1])
    (group_rules,) = doc["security_groups"].values()
    assert group_rules[0]["port_min"] == 80 and group_rules[1]["remote_ips"] == [nic["ip"]]
    local = {p["ip"]: p for p in doc["vpcs"][0]["local_ports"]}
    assert local[nic["ip"]]["eip"]["address"] == eip["address"]
    # agents only: a tenant member reads no documents and reports nothing
    assert member.get(path).status_code == 403
    assert member.post(f"/sdn/hosts/{hosts[1]}/learn", {"destinations": []}).status_code == 403
    assert admin.get("/sdn/hosts/host-nothere/document").status_code == 404
    unknown = admin.get("/sdn/hosts/host-nothere/document", params={"since": 9, "wait": 30})
    assert unknown.status_code == 404  # at once, not after the wait


def test_every_change_a_document_shows_raises_its_version(admin: Api, root_id: str) -> None:
    site, hosts, net, subnets, ports = _vpc_with_ports(admin, "ondemand")
    member = admin.as_user(net["tenant_id"], "versions-member")
    web = member.ok(member.post("/security-groups", {"name": "web"}), 201)
    db_group = member.ok(member.post("/security-groups", {"name": "db"}), 201)
    rules = [{"direction": "ingress", "remote_group_id": web["id"]}]
    member.ok(member.patch(f"/security-groups/{db_group['id']}", {"rules": rules}))
    nic = ports[hosts[1]][0]
    member.ok(member.patch(f"/ports/{nic['id']}", {"security_group_ids": [db_group["id"]]}))
    before = document(admin, hosts[1])
    # a port joining the remote group (even one on no host) changes h01's rules
    joined = member.ok(
        member.post("/ports", {"vxnet_id": subnets[0]["id"], "security_group_ids": [web["id"]]}),
        201,
    )
    after = document(admin, hosts[1])
    assert after["version"] > before["version"]
    assert after["security_groups"][db_group["id"]][0]["remote_ips"] == [joined["ip"]]
    member.ok(member.delete(f"/ports/{joined['id']}"), 204)
    left = document(admin, hosts[1])
    assert (
        left["version"] > after["version"]
        and not left["security_groups"][db_group["id"]][0]["remote_ips"]
    )
    # a tenant cannot take its port off its host: placing is the platform's
    assert member.patch(f"/ports/{nic['id']}", {"host_id": None}).status_code == 403
    # deleting a VPC tells its gateways, which stop serving it
    spare = vpc(admin, site["zone"]["id"], "10.9.0.0/16", name="spare", routing_mode="ondemand")
    served = document(admin, hosts[0])
    assert spare["id"] in {v["vpc_id"] for v in served["vpcs"]}
    admin.ok(admin.delete(f"/vpcs/{spare['id']}"), 204)
    gone = document(admin, hosts[0])
    assert gone["version"] > served["version"]
    assert spare["id"] not in {v["vpc_id"] for v in gone["vpcs"]}
