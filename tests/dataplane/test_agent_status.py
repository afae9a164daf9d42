"""An agent that cannot build a router says so to the controller, and keeps serving the
host's other VPCs."""

import time

from tests.support import network
from tests.support.api import Api
from tests.support.fabric import PUBLIC_GATEWAY, Fabric


def _agent(api: Api, host_id: str, until, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while not until(agent := api.ok(api.get(f"/sdn/hosts/{host_id}"))["agent"]):
        assert time.monotonic() < deadline, agent
        time.sleep(0.2)
    return agent


def test_a_router_the_agent_cannot_build_is_reported(live_admin: Api, dc: Fabric) -> None:
    zone_id = dc.zone["zone"]["id"]
    network.public_pool(live_admin, zone_id, "203.0.113.0/24", gateway=PUBLIC_GATEWAY)
    pairs = {}
    for name in ("plain", "exposed"):
        vpc = network.vpc(live_admin, zone_id, "192.168.0.0/16", name=name)
        net = network.vxnet(live_admin, vpc["id"], "192.168.1.0/24")
        ports = [network.port(live_admin, net["id"], dc.host_ids[n]) for n in (1, 2)]
        pairs[name] = (vpc, ports)
    exposed, (with_eip, _) = pairs["exposed"]
    eip = live_admin.ok(live_admin.post("/eips", {"zone_id": zone_id}), 201)
    bind = {"action": "bind", "port_id": with_eip["id"]}
    live_admin.ok(live_admin.post(f"/eips/{eip['id']}/actions", bind))
    dc.agent(1, dc.host_ids[1], uplink_bridge=None)  # started without --uplink-bridge
    dc.agent(2, dc.host_ids[2])

    failed = _agent(live_admin, dc.host_ids[1], lambda a: a and a["errors"])
    assert list(failed["errors"]) == [exposed["id"]]
    assert "uplink bridge" in failed["errors"][exposed["id"]]
    assert failed["up_to_date"] and not failed["stale"]
    _, (here, there) = pairs["plain"]
    dc.wait_ping(here, there["ip"])  # the host's other VPC works
