"""Learned entries in the kernel: granted after traffic through the gateway host, gone from
the member host's router when their TTL ran out (the controller's expiry pass raises the
document's version, the agent applies the difference) — and the traffic still flows, back
through the gateway."""

from datetime import timedelta

from tests.support import network
from tests.support.api import Api
from tests.support.fabric import Fabric
from yunguan.core import clock
from yunguan.core.config import get_settings
from yunguan.network.sdn import learning


def test_learned_entries_expire_from_the_kernel(live_admin: Api, dc: Fabric, db) -> None:
    vpc = network.vpc(live_admin, dc.zone["zone"]["id"], "192.168.0.0/16", routing_mode="ondemand")
    net = network.vxnet(live_admin, vpc["id"], "192.168.1.0/24")
    here = network.port(live_admin, net["id"], dc.host_ids[1])
    there = network.port(live_admin, net["id"], dc.host_ids[2])
    for n, host_id in enumerate(dc.host_ids):
        dc.agent(n, host_id)
    dc.wait_ping(here, there["ip"])
    dc.wait_entry(1, vpc["id"], there["mac"])  # learned from that traffic
    learned = dc.entries(1, vpc["id"])

    ttl = timedelta(seconds=get_settings().sdn_learn_ttl_seconds)
    later = clock.now() + ttl + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    with db.session() as session:
        assert learning.expire(session) >= 1  # the replies may have taught host 2 too
    dc.wait_entry(1, vpc["id"], there["mac"], present=False)
    assert dc.entries(1, vpc["id"]) == learned - 4  # its route, neighbour and two fdb entries
    # Through the gateway host again: the VM's stale neighbour entry may cost the first
    # packet while it re-resolves, so wait for the path, then count a steady run.
    dc.wait_ping(here, there["ip"])
    assert dc.ping(here, there["ip"], count=3) == 3
