"""The data plane through real kernels: hosts and VMs are network namespaces, agents apply
the controller's documents, and every test counts packets."""

import time

from tests.support import network
from tests.support.api import Api
from tests.support.fabric import PUBLIC_GATEWAY, Fabric, Pinger, in_ns
from yunguan.dataplane import names


def _vpc(api: Api, dc: Fabric, mode: str = "full", cidr: str = "192.168.0.0/16", **fields):
    return network.vpc(api, dc.zone["zone"]["id"], cidr, routing_mode=mode, **fields)


def _pair(api: Api, dc: Fabric, hosts: tuple[int, int] = (1, 2)) -> tuple[dict, dict, dict, dict]:
    """A VPC with one vxnet, and a VM on each of two hosts: (vpc, vxnet, a, b)."""
    vpc = _vpc(api, dc)
    net = network.vxnet(api, vpc["id"], "192.168.1.0/24")
    a, b = (network.port(api, net["id"], dc.host_ids[n]) for n in hosts)
    return vpc, net, a, b


def _two_vxnets(api: Api, dc: Fabric) -> tuple[dict, dict]:
    """Two vxnets of one VPC."""
    vpc = _vpc(api, dc)
    return tuple(network.vxnet(api, vpc["id"], f"192.168.{n}.0/24") for n in (1, 2))  # type: ignore[return-value]


def _start(dc: Fabric) -> None:
    for n, host_id in enumerate(dc.host_ids):
        dc.agent(n, host_id)


def test_vms_of_one_vxnet_on_two_hosts_ping(live_admin: Api, dc: Fabric) -> None:
    _, net, a, b = _pair(live_admin, dc, (1, 2))
    _start(dc)
    dc.wait_ping(a, b["ip"])
    assert dc.ping(a, b["ip"], count=5) == 5
    # new ports, with the agents running, reach it (bench/dataplane.py times this)
    for _ in range(10):
        port = network.port(live_admin, net["id"], dc.host_ids[2])
        dc.wait_ping(port, a["ip"])


def test_vxnets_of_one_vpc_route_in_one_hop(live_admin: Api, dc: Fabric) -> None:
    one, two = _two_vxnets(live_admin, dc)
    a = network.port(live_admin, one["id"], dc.host_ids[1])
    b = network.port(live_admin, two["id"], dc.host_ids[2])
    _start(dc)
    dc.wait_ping(a, b["ip"])
    # the reply left b with TTL 64: one router (a's host's) decremented it
    assert dc.ping_ttl(a, b["ip"]) == 63
    assert dc.ping(a, b["ip"], count=5) == 5


def test_vpcs_with_the_same_addresses_are_isolated(live_admin: Api, dc: Fabric) -> None:
    ports = {}
    for name in ("red", "blue"):
        vpc = _vpc(live_admin, dc, name=name)
        net = network.vxnet(live_admin, vpc["id"], "192.168.1.0/24")
        ports[name] = (
            network.port(live_admin, net["id"], dc.host_ids[1], ip="192.168.1.10"),
            network.port(live_admin, net["id"], dc.host_ids[2], ip="192.168.1.20"),
        )
    _start(dc)
    for caller, responder in ports.values():
        dc.wait_ping(caller, responder["ip"])
    # with blue's responder down, red still reaches .20 and blue does not
    in_ns(dc.vm(ports["blue"][1]), "ip", "link", "set", "eth0", "down")
    assert dc.ping(ports["red"][0], "192.168.1.20", count=3) == 3
    assert dc.ping(ports["blue"][0], "192.168.1.20", count=3) == 0
    in_ns(dc.vm(ports["blue"][1]), "ip", "link", "set", "eth0", "up")
    in_ns(dc.vm(ports["red"][1]), "ip", "link", "set", "eth0", "down")
    assert dc.ping(ports["blue"][0], "192.168.1.20", count=3) == 3
    assert dc.ping(ports["red"][0], "192.168.1.20", count=3) == 0


def test_no_arp_or_broadcast_crosses_the_underlay(live_admin: Api, dc: Fabric) -> None:
    one, two = _two_vxnets(live_admin, dc)
    a = network.port(live_admin, one["id"], dc.host_ids[1])
    b = network.port(live_admin, one["id"], dc.host_ids[2])
    c = network.port(live_admin, two["id"], dc.host_ids[2])
    _start(dc)
    dc.wait_ping(a, b["ip"])
    dc.wait_ping(a, c["ip"])
    with dc.capture(dc.underlay, "under") as capture:
        for vm in (a, b, c):
            in_ns(dc.vm(vm), "ip", "neigh", "flush", "all")  # every VM resolves again
        assert dc.ping(a, b["ip"], count=3) == 3
        assert dc.ping(a, c["ip"], count=3) == 3
        in_ns(dc.vm(a), "ping", "-n", "-c", "2", "-b", "192.168.1.255", check=False)
    assert capture.count("udp port 4789") >= 12  # the pings crossed it, encapsulated
    assert capture.count("arp or ether broadcast") == 0
    inner_arp = "udp port 4789 and udp[28:2] = 0x0806"
    inner_broadcast = "udp port 4789 and udp[16:4] = 0xffffffff and udp[20:2] = 0xffff"
    assert capture.count(inner_arp) == 0
    assert capture.count(inner_broadcast) == 0


def test_eips_of_two_vpcs_with_the_same_private_address(live_admin: Api, dc: Fabric) -> None:
    zone_id = dc.zone["zone"]["id"]
    network.public_pool(live_admin, zone_id, "203.0.113.0/24", gateway=PUBLIC_GATEWAY)
    ports, eips = [], []
    for n, name in enumerate(("red", "blue")):
        vpc = _vpc(live_admin, dc, name=name)
        net = network.vxnet(live_admin, vpc["id"], "192.168.1.0/24")
        port = network.port(live_admin, net["id"], dc.host_ids[n + 1], ip="192.168.1.10")
        eip = live_admin.ok(live_admin.post("/eips", {"zone_id": zone_id}), 201)
        live_admin.ok(
            live_admin.post(f"/eips/{eip['id']}/actions", {"action": "bind", "port_id": port["id"]})
        )
        ports.append(port)
        eips.append(eip["address"])
    _start(dc)
    for eip in eips:
        dc.wait_ping_from(dc.internet, eip)
    with dc.capture(dc.internet, "eth0") as capture:
        for port in ports:
            assert dc.ping(port, PUBLIC_GATEWAY, count=2) == 2
    for eip in eips:  # each VM's egress carries its own EIP as the source
        assert capture.count(f"icmp[icmptype] = icmp-echo and src host {eip}") == 2
    assert capture.count("icmp and src net 192.168.0.0/16") == 0


def test_live_migration_keeps_address_and_recovers(live_admin: Api, dc: Fabric) -> None:
    vpc, _net, a, b = _pair(live_admin, dc, (0, 1))
    _start(dc)
    dc.wait_ping(a, b["ip"])
    pinger = Pinger(dc, a, b["ip"])
    time.sleep(1)
    moved = live_admin.ok(live_admin.patch(f"/ports/{b['id']}", {"host_id": dc.host_ids[2]}))
    assert (moved["ip"], moved["mac"]) == (b["ip"], b["mac"])
    time.sleep(3)
    sent, received = pinger.stop()
    lost = sent - received
    assert received > 0 and lost < sent / 2
    assert dc.ping(a, b["ip"], count=5) == 5
    # the VM kept its MAC; the source host forgot it, the peer points at the new host
    nic = in_ns(dc.vm(b), "ip", "-br", "link", "show", "eth0")
    assert b["mac"] in nic
    old_router = names.router_netns(dc.prefix(1), vpc["id"])
    assert old_router not in dc.namespaces()
    peer_fdb = in_ns(names.router_netns(dc.prefix(0), vpc["id"]), "bridge", "fdb", "show")
    assert f"{b['mac']} dev vx" in peer_fdb and "dst 10.0.0.3" in peer_fdb
    assert "dst 10.0.0.2" not in peer_fdb


def test_ondemand_installs_fewer_entries_than_full(live_admin: Api, dc: Fabric) -> None:
    counts = {}
    for mode in ("full", "ondemand"):
        vpc = _vpc(live_admin, dc, mode=mode, name=mode)
        net = network.vxnet(live_admin, vpc["id"], "192.168.1.0/24")
        here = [network.port(live_admin, net["id"], dc.host_ids[1]) for _ in range(4)]
        there = [network.port(live_admin, net["id"], dc.host_ids[2]) for _ in range(4)]
        if mode == "full":
            _start(dc)
        dc.wait_ping(here[0], there[0]["ip"])  # the same traffic in both VPCs
        if mode == "ondemand":  # first through the gateway host, then directly
            dc.wait_entry(1, vpc["id"], there[0]["mac"])
            assert dc.ping(here[0], there[0]["ip"], count=3) == 3
        counts[mode] = dc.entries(1, vpc["id"])
    # full: 4 local + 4 remote ports; ondemand: 4 local + 1 learned + the gateway path
    assert counts["full"] == 4 * 2 + 4 * 4
    assert counts["ondemand"] == 4 * 2 + 1 * 4 + 3
    assert counts["ondemand"] < counts["full"]
    # the controller shows every agent on its current document, without errors, and host 1
    # holding the entries of its two routers
    deadline = time.monotonic() + 15
    while True:
        agents = [live_admin.ok(live_admin.get(f"/sdn/hosts/{h}"))["agent"] for h in dc.host_ids]
        held = agents[1] and (agents[1]["routers"], agents[1]["entries"])
        if all(a and a["up_to_date"] for a in agents) and held == (2, sum(counts.values())):
            break
        assert time.monotonic() < deadline, agents
        time.sleep(0.2)
    assert [(a["errors"], a["stale"]) for a in agents] == [({}, False)] * 3


def test_agents_restart_under_traffic_without_loss(live_admin: Api, dc: Fabric) -> None:
    _, _, a, b = _pair(live_admin, dc, (1, 2))
    agents = [dc.agent_process(n, host_id) for n, host_id in enumerate(dc.host_ids)]
    dc.wait_ping(a, b["ip"])
    pinger = Pinger(dc, a, b["ip"])
    time.sleep(0.5)
    for n, process in enumerate(agents):  # killed hard, started again
        process.kill()
        process.wait()
        dc.agent_process(n, dc.host_ids[n])
    time.sleep(3)
    sent, received = pinger.stop()
    assert sent > 100 and received == sent  # ~60 Hz on a loaded 2-core machine


def test_controller_restart_under_traffic_without_loss(app, live_admin: Api, dc: Fabric) -> None:
    _, _, a, b = _pair(live_admin, dc, (1, 2))
    with dc.controller(app) as restart:
        _start(dc)
        dc.wait_ping(a, b["ip"])
        pinger = Pinger(dc, a, b["ip"])
        restart(down_seconds=2)
        time.sleep(2)  # the agents are back on the controller
        sent, received = pinger.stop()
    assert sent > 100 and received == sent


def test_security_groups_block_and_allow(live_admin: Api, dc: Fabric) -> None:
    vpc = _vpc(live_admin, dc)
    net = network.vxnet(live_admin, vpc["id"], "192.168.1.0/24")
    ssh_only = {"direction": "ingress", "protocol": "tcp", "port_min": 22, "port_max": 22}
    egress = {"direction": "egress", "protocol": "any"}
    group = live_admin.ok(
        live_admin.post("/security-groups", {"name": "ssh", "rules": [ssh_only, egress]}), 201
    )
    a = network.port(live_admin, net["id"], dc.host_ids[1])
    same_host = network.port(live_admin, net["id"], dc.host_ids[1])
    b = network.port(live_admin, net["id"], dc.host_ids[2], security_group_ids=[group["id"]])
    c = network.port(live_admin, net["id"], dc.host_ids[1], security_group_ids=[group["id"]])
    _start(dc)
    dc.wait_ping(a, same_host["ip"])
    dc.wait_ping(b, a["ip"])  # b may send, and the replies come back
    assert dc.ping(a, b["ip"], count=3) == 0  # ICMP in: not allowed
    assert dc.ping(same_host, c["ip"], count=3) == 0  # not on the same bridge either
    icmp = {"direction": "ingress", "protocol": "icmp", "remote_cidr": f"{a['ip']}/32"}
    rules = [ssh_only, egress, icmp]
    live_admin.ok(live_admin.patch(f"/security-groups/{group['id']}", {"rules": rules}))
    dc.wait_ping(a, b["ip"])
    assert dc.ping(a, b["ip"], count=3) == 3
    assert dc.ping(a, c["ip"], count=3) == 3
    assert dc.ping(same_host, c["ip"], count=3) == 0  # only a's address is allowed
