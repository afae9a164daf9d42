"""Simulator instances backed by netns VMs: a simulator whose hosts have underlay addresses,
agents with ``--plug netns`` on those hosts, and two instances provisioned through the API
that ping each other across hosts — the data plane testable with many VMs and no QEMU."""

import pytest

from tests.support import network
from tests.support.api import Api
from tests.support.compute import created, simulated_zone
from tests.support.fabric import fabric

pytestmark = pytest.mark.usefixtures("workflows", "kernel_tools")


def test_simulated_instances_ping_across_hosts(admin: Api, root_id: str, live_url: str) -> None:
    # one 2 GiB machine fills a 2 GiB host: the two instances land on different hosts
    place = simulated_zone(admin, hosts=2, memory_mb=2048, underlay="10.0.0.0/24")
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": place["cluster"]["id"]}))["items"]
    assert sorted(h["address"] for h in hosts) == ["10.0.0.1", "10.0.0.2"]
    member = admin.as_user(admin.tenant(root_id, "Team")["id"], "dev", ["member"])
    vpc = network.vpc(member, place["zone"]["id"], "10.2.0.0/16")
    vxnet = network.vxnet(member, vpc["id"], "10.2.1.0/24")

    with fabric(2, live_url) as dc:
        for host in hosts:
            dc.agent(int(host["address"].rsplit(".", 1)[1]) - 1, host["id"])
        a, b = (created(member, place, name, vxnet_id=vxnet["id"]) for name in ("a", "b"))
        assert a["state"] == b["state"] == "running" and a["host_id"] != b["host_id"]
        vm = {"id": a["port_id"], "ip": a["ip"]}  # the port, as the fabric names its VM
        dc.wait_ping(vm, b["ip"])
        assert dc.ping(vm, b["ip"], count=10, interval=0.05) == 10
