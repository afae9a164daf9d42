"""The data plane through real kernels: hosts and VMs are network namespaces
(``tests.support.fabric``), one ``yunguan agent`` process per host, the app served by a
real uvicorn on durable PostgreSQL (``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts one).
Needs root, nftables and ping. Three hosts, the first an ``sdn-gateway``. Measured:

1. port create to first answered ping: ports created one at a time through ``POST /ports``,
   round-robin over the hosts; from the response to the first reply of a ping every 10 ms
   from the new VM to a VM on the next host (``full`` mode: both hosts must have the entry);
2. live migration: a VM's port moved to another host (``PATCH /ports/{id}``), back and
   forth, while a VM on a third host pings it with ``-i 0.01`` (100 Hz asked, about 60 Hz
   what this kernel gives, so the rate is measured too); requests never answered, the
   outage (the longest time without a reply: late answers count) and the recovery (the
   PATCH response to the end of that outage). Once with a destination that has no router
   of the VPC yet (the move creates it, and removes the source's), once with idle VMs of
   the VPC on both hosts;
3. kernel entries per host (routes, permanent neighbours, static fdb entries in each
   router namespace), ``full`` against ``ondemand``, for the same VMs and the same pings
   (each VM pings 1, then 3 peers).

Prints a table and JSON lines, and appends to docs/benchmarks.md.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import httpx

from bench.report import durable_postgres, percentile, record_section, table
from tests.conftest import LiveServer, prepare_database
from tests.support import network
from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.fabric import REPLY, Fabric, Pinger, fabric, in_ns
from yunguan.dataplane import names

HOSTS = 3
PORTS = int(os.environ.get("BENCH_PORTS", "60"))
MOVES = int(os.environ.get("BENCH_MOVES", "10"))
VMS = int(os.environ.get("BENCH_VMS", "30"))
PEERS = [int(k) for k in os.environ.get("BENCH_PEERS", "1,3").split(",")]
AFTER_MOVE_S = 3.0  # how long the ping goes on after each move


def first_reply(dc: Fabric, port: dict, address: str, timeout: float = 30) -> tuple[float, float]:
    """Wall-clock times of the first answer to a ping from the port's VM, and of the start
    of the first ping that could send: it pings every 10 ms from the moment the VM's
    namespace exists and has a route (that is, once the agent plugged it)."""
    deadline, sending = time.monotonic() + timeout, None
    while (left := deadline - time.monotonic()) > 0:
        command = ["ping", "-n", "-D", "-c", "1", "-i", "0.01", "-w", str(int(left) + 1)]
        started = time.time()
        done = subprocess.run(
            ["ip", "netns", "exec", dc.vm(port), *command, address],
            capture_output=True,
            text=True,
            check=False,
        )
        if sending is None and done.stdout.startswith("PING"):  # past connect(): routed
            sending = started
        if found := REPLY.search(done.stdout):
            return float(found.group(1)), sending or started
        time.sleep(0.01)  # no namespace or no route yet
    raise SystemExit(f"{address} not reachable from {port['ip']} in {timeout} s")


def retire(api: Api, dc: Fabric, vpc_id: str, vxnet_id: str, ports: list[dict]) -> None:
    """Delete the VPC with its ports and wait until no host has a router of it (the gateway
    host serves a VPC without ports): the next figure is measured without this one's state
    in the agents' passes."""
    for port in ports:
        api.ok(api.delete(f"/ports/{port['id']}"), 204)
    api.ok(api.delete(f"/vxnets/{vxnet_id}"), 204)
    api.ok(api.delete(f"/vpcs/{vpc_id}"), 204)
    routers = {names.router_netns(dc.prefix(n), vpc_id) for n in range(HOSTS)}
    deadline = time.monotonic() + 30
    while routers & set(dc.namespaces()):
        if time.monotonic() > deadline:
            raise SystemExit(f"routers of {vpc_id} still there after its ports were deleted")
        time.sleep(0.2)


def port_up(api: Api, dc: Fabric) -> dict:
    vpc = network.vpc(api, dc.zone_id, "192.168.0.0/16", name="port-up")
    net = network.vxnet(api, vpc["id"], "192.168.0.0/22")
    targets = [network.port(api, net["id"], host) for host in dc.host_ids]
    for n, target in enumerate(targets):  # the agents are up and the targets answer
        dc.wait_ping(target, targets[(n + 1) % HOSTS]["ip"], timeout=60)
    seconds, plugged, after, post_ms, made = [], [], [], [], []
    for i in range(PORTS):
        n = i % HOSTS
        started = time.monotonic()
        made.append(network.port(api, net["id"], dc.host_ids[n]))
        created = time.time()
        post_ms.append((time.monotonic() - started) * 1000)
        answered, sending = first_reply(dc, made[-1], targets[(n + 1) % HOSTS]["ip"])
        seconds.append(answered - created)
        plugged.append(sending - created)
        after.append(answered - sending)
    retire(api, dc, vpc["id"], net["id"], targets + made)
    return {
        "figure": "port create -> first answered ping",
        "mode": "full",
        "ports": PORTS,
        "p50_s": round(percentile(seconds, 50), 2),
        "p90_s": round(percentile(seconds, 90), 2),
        "p99_s": round(percentile(seconds, 99), 2),
        "max_s": round(max(seconds), 2),
        "min_s": round(min(seconds), 2),
        "post_p50_ms": round(percentile(post_ms, 50)),
        "vm_plugged_p50_s": round(percentile(plugged, 50), 2),
        "vm_plugged_max_s": round(max(plugged), 2),
        "plugged_to_reply_p50_s": round(percentile(after, 50), 2),
        "plugged_to_reply_max_s": round(max(after), 2),
    }


def outage(replies: dict[int, float], sent: int, moved_at: float) -> dict:
    """What one move cost the ping: requests never answered; the longest time without a
    reply (answers that come late, queued behind an ARP retry, count as missing there); and
    from the PATCH response to the end of that silence."""
    answered, arrivals = sorted(replies), sorted(replies.values())
    hz = (answered[-1] - answered[0]) / (arrivals[-1] - arrivals[0])  # what -i 0.01 achieves
    lost = sum(1 for s in range(1, answered[-1]) if s not in replies)
    if sent - answered[-1] > 5:  # still unanswered when it stopped
        return {"lost": lost + sent - answered[-1], "hz": hz, "recovered": False}
    silence, resumed = max((b - a, b) for a, b in pairwise(arrivals))
    recovery = max(0.0, resumed - moved_at) if silence > 0.1 else 0.0
    return {
        "lost": lost,
        "hz": hz,
        "outage_ms": silence * 1000,
        "recovery_ms": recovery * 1000,
        "recovered": True,
    }


def migration(api: Api, dc: Fabric, resident: bool) -> dict:
    """VM b moves between hosts 1 and 2; VM a on host 0 pings it."""
    label = "router already there" if resident else "no router of the VPC yet"
    vpc = network.vpc(api, dc.zone_id, "10.1.0.0/16", name=f"move-{int(resident)}")
    net = network.vxnet(api, vpc["id"], "10.1.1.0/24")
    a, b = (network.port(api, net["id"], dc.host_ids[n]) for n in (0, 1))
    idle = [network.port(api, net["id"], dc.host_ids[n]) for n in (1, 2)] if resident else []
    for port in (b, *idle):
        dc.vm(port)  # their namespaces go with the fabric
    dc.wait_ping(a, b["ip"], timeout=60)
    moves, where = [], 1
    for _ in range(MOVES):
        where = 3 - where
        pinger = Pinger(dc, a, b["ip"])
        time.sleep(1)
        api.ok(api.patch(f"/ports/{b['id']}", {"host_id": dc.host_ids[where]}))
        moved_at = time.time()
        time.sleep(AFTER_MOVE_S)
        sent, _received = pinger.stop()
        moves.append(outage(pinger.replies, sent, moved_at))
    retire(api, dc, vpc["id"], net["id"], [a, b, *idle])
    done = [m for m in moves if m["recovered"]]
    lost = [m["lost"] for m in moves]
    result = {
        "figure": "live migration, ping -i 0.01 from a third host",
        "destination": label,
        "moves": MOVES,
        "lost_p50": round(percentile(lost, 50)),
        "lost_max": max(lost),
        "ping_hz": round(percentile([m["hz"] for m in moves], 50)),
        "not_recovered": MOVES - len(done),
    }
    for key in ("outage_ms", "recovery_ms") if done else ():
        values = [m[key] for m in done]
        result[f"{key[:-3]}_p50_ms"] = round(percentile(values, 50))
        result[f"{key[:-3]}_max_ms"] = round(max(values))
    return result


def settled(dc: Fabric, vpc_id: str, quiet: float = 3.0, timeout: float = 60) -> list[int]:
    """Every host's entry count for the VPC once none changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    counts: list[int] = []
    since = time.monotonic()
    while True:
        now = [dc.entries(n, vpc_id) for n in range(HOSTS)]
        if now != counts:
            counts, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return counts
        if time.monotonic() > deadline:
            raise SystemExit(f"entries of {vpc_id} still changing after {timeout} s")
        time.sleep(0.5)


def learned(
    dc: Fabric, vpc_id: str, vms: list[dict], pairs: list[tuple[int, int]], timeout: float = 60
) -> int:
    """Until each member host has a direct entry for every remote peer its VMs ping. The
    pings go on meanwhile, as traffic would: a destination reached just before the agent
    replaces its nftables table (which empties the set it learns from) is not reported.
    Returns how many pairs had to ping again."""
    deadline = time.monotonic() + timeout
    missing = {(i, j) for i, j in pairs if i % HOSTS and i % HOSTS != j % HOSTS}
    again: set[tuple[int, int]] = set()
    while True:
        time.sleep(2)  # the agents report, the controller grants, the agents install
        fdb = {
            n: in_ns(names.router_netns(dc.prefix(n), vpc_id), "bridge", "fdb", "show")
            for n in range(1, HOSTS)
        }
        missing = {(i, j) for i, j in missing if f"{vms[j]['mac']} dev vx" not in fdb[i % HOSTS]}
        if not missing:
            return len(again)
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(missing)} peers not learned in {timeout} s")
        for i, j in missing:
            dc.ping(vms[i], vms[j]["ip"])
        again |= missing


def entries(api: Api, dc: Fabric, peers: int) -> dict:
    """VMS VMs round-robin over the hosts, each pings ``peers`` others: once in a ``full``
    VPC, once in an ``ondemand`` one. In ``ondemand`` the first pings go through the gateway
    host; the counts are taken once the granted entries are in every kernel."""
    rng = random.Random(5)
    pairs = [
        (i, j) for i in range(VMS) for j in rng.sample([j for j in range(VMS) if j != i], peers)
    ]
    counts = {}
    for mode in ("full", "ondemand"):
        name = f"{mode}-{peers}"
        vpc = network.vpc(api, dc.zone_id, "172.16.0.0/16", routing_mode=mode, name=name)
        net = network.vxnet(api, vpc["id"], "172.16.1.0/24")
        vms = [network.port(api, net["id"], dc.host_ids[i % HOSTS]) for i in range(VMS)]
        for i, j in pairs:
            dc.wait_ping(vms[i], vms[j]["ip"], timeout=60)
        if mode == "ondemand":
            pinged_again = learned(dc, vpc["id"], vms, pairs)
        counts[mode] = settled(dc, vpc["id"])
        retire(api, dc, vpc["id"], net["id"], vms)
    full, ondemand = counts["full"], counts["ondemand"]
    return {
        "figure": "kernel entries per host (host 0 is the gateway)",
        "hosts": HOSTS,
        "vms": VMS,
        "peers_per_vm": peers,
        "full_per_host": "/".join(map(str, full)),
        "ondemand_per_host": "/".join(map(str, ondemand)),
        "full_total": sum(full),
        "ondemand_total": sum(ondemand),
        "members_ratio": round(sum(full[1:]) / sum(ondemand[1:]), 2),
        "pairs_pinged_again": pinged_again,
    }


def measure(url: str) -> list[dict]:
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        fabric(HOSTS, url) as dc,
    ):
        api = Api(http).login("admin", ADMIN_PASSWORD)
        zone = network.sdn_zone(api, hosts=HOSTS, gateways=1)
        dc.zone_id, dc.host_ids = zone["zone"]["id"], [h["id"] for h in zone["hosts"]]
        for n, host_id in enumerate(dc.host_ids):
            dc.agent_process(n, host_id)
        results = [port_up(api, dc)]
        print(json.dumps({"bench": "dataplane", **results[-1]}), flush=True)
        for resident in (False, True):
            results.append(migration(api, dc, resident))
            print(json.dumps({"bench": "dataplane", **results[-1]}), flush=True)
        for peers in PEERS:
            results.append(entries(api, dc, peers))
            print(json.dumps({"bench": "dataplane", **results[-1]}), flush=True)
        return results


def main() -> None:
    from yunguan.app import create_app
    from yunguan.core.config import Settings

    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ping"):
        skipped = "skipped: the data plane needs root, nftables and ping"
        print(json.dumps({"bench": "dataplane", "namespaces": skipped}), flush=True)
        return
    urls = durable_postgres(["bench_dataplane"])
    if not urls:
        sys.exit("run it through make bench (needs YUNGUAN_TEST_PG_URL)")
    os.environ["YUNGUAN_LOG_LEVEL"] = "WARNING"  # the agents' stderr is a pipe nobody reads
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(
            database_url=urls["bench_dataplane"], data_dir=Path(data), log_level="WARNING"
        )
        prepare_database(settings)
        app = create_app(settings, run_workflows=False)
        try:
            with LiveServer(app) as url:
                results = measure(url)
        finally:
            app.state.db.dispose()
    parameters = ("mode", "ports", "destination", "moves", "hosts", "vms", "peers_per_vm")
    print("\n".join(table(results, parameters)), flush=True)
    record_section("Data plane (bench/dataplane.py)", results, parameters)


if __name__ == "__main__":
    main()
