"""The SDN controller at scale, with simulated agents, on PostgreSQL
(``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts a durable throw-away cluster).

One VPC (16 vxnets of /20) with 64,000 ports on 2,000 hosts (32 per host), 2 gateway hosts;
every VM talks to between 1 and 20 peers of the VPC, so in ``ondemand`` mode each host has
learned entries for its VMs' remote peers (at most the per-host cap). Measured:

1. entries per host and in total, ``full`` against ``ondemand``;
2. a full resync: every host's document computed from the database;
3. port create to every affected host's document rebuilt: after each create, the simulated
   agents compare versions (as their long-polls do) and the changed hosts' documents are
   built, as the agents would fetch them.

Prints JSON lines and appends to docs/benchmarks.md.
"""

import json
import os
import random
import time
from datetime import timedelta

from bench.report import durable_postgres, percentile, record_section

HOSTS = int(os.environ.get("BENCH_HOSTS", "2000"))
PER_HOST = int(os.environ.get("BENCH_PORTS_PER_HOST", "32"))
PEERS = int(os.environ.get("BENCH_PEERS", "20"))
CAP = int(os.environ.get("BENCH_LEARN_CAP", "512"))
CREATES = int(os.environ.get("BENCH_CREATES", "100"))
GATEWAYS = 2
VXNETS = 16  # /20 each: 4,093 addresses for ports


def _principal(root):
    from yunguan.identity.scope import Principal

    return Principal("u-bench", "bench", root.id, root.path, frozenset({"platform-admin"}))


def seed(url: str):
    """The data centre, the VPC and its ports (bulk), and the learned entries."""
    from sqlalchemy import bindparam, insert, select, update

    from yunguan.core.clock import now
    from yunguan.core.db import Database
    from yunguan.core.ids import new_id
    from yunguan.core.migrate import upgrade
    from yunguan.identity.service import ensure_root_tenant
    from yunguan.inventory import service as inventory
    from yunguan.inventory.models import Cluster, Pod, Region, Zone
    from yunguan.models import load_all
    from yunguan.network import ipam, vpcs
    from yunguan.network.models import IpAddress, IpChunk, LearnedRoute, Port, VlanPool
    from yunguan.network.schemas import VpcCreate, VxnetCreate

    load_all()
    db = Database(url)
    upgrade(db)
    with db.session() as session:
        root = ensure_root_tenant(session)
        for row in (  # one at a time: the models declare no relationships to order them by
            Region(id="reg-b", name="bench"),
            Zone(id="zone-b", name="bench", region_id="reg-b"),
            Pod(id="pod-b", name="bench", zone_id="zone-b"),
            Cluster(id="cl-b", name="kvm", pod_id="pod-b", zone_id="zone-b", hypervisor="kvm"),
            VlanPool(
                id="vlan-b",
                name="vni",
                zone_id="zone-b",
                network_type="vxlan",
                first_id=1,
                last_id=99,
            ),
        ):
            session.add(row)
            session.flush()
        hosts = [
            {
                "id": f"host-{n:05d}",
                "name": f"h{n:05d}",
                "cluster_id": "cl-b",
                "cpu_cores": 64,
                "memory_mb": 262_144,
                "disk_gb": 2000,
                "address": f"172.16.{n // 250}.{n % 250 + 1}",
                "traits": ["sdn-gateway"] if n < GATEWAYS else [],
            }
            for n in range(HOSTS)
        ]
        inventory.insert_hosts(session, hosts)
    principal = _principal(root)
    with db.session() as session:
        vpc = vpcs.create_vpc(
            session, principal, VpcCreate(name="big", zone_id="zone-b", cidr="10.0.0.0/16")
        )
        subnets = [
            vpcs.create_vxnet(
                session,
                principal,
                VxnetCreate(name=f"s{n}", vpc_id=vpc.id, cidr=f"10.0.{16 * n}.0/20"),
            )
            for n in range(VXNETS)
        ]
        vpc_id, tenant_id = vpc.id, root.id
    # the ports: each vxnet's first addresses, round-robin over the hosts
    ports, holds = [], []
    per_vxnet = -(-(len(hosts) * PER_HOST) // VXNETS)
    with db.session() as session:
        for subnet in subnets:
            rows = session.execute(
                select(IpAddress.position, IpAddress.address)
                .where(IpAddress.pool_id == subnet.ip_pool_id, IpAddress.owner_id.is_(None))
                .order_by(IpAddress.position)
                .limit(per_vxnet)
            ).all()
            for position, address in rows:
                port_id = new_id("port")
                host = hosts[len(ports) % len(hosts)]["id"]
                ports.append(
                    {
                        "id": port_id,
                        "tenant_id": tenant_id,
                        "vxnet_id": subnet.id,
                        "vpc_id": vpc_id,
                        "ip_pool_id": subnet.ip_pool_id,
                        "mac": vpcs.random_mac(),
                        "ip": address,
                        "host_id": host,
                        "security_group_ids": [],
                        "created_at": now(),
                        "updated_at": now(),
                        "name": "",
                    }
                )
                holds.append({"pool": subnet.ip_pool_id, "at": position, "owner": port_id})
        for start in range(0, len(ports), 5000):
            session.execute(insert(Port), ports[start : start + 5000])
        hold = (
            update(IpAddress)
            .where(IpAddress.pool_id == bindparam("pool"), IpAddress.position == bindparam("at"))
            .values(owner_id=bindparam("owner"))
        )
        session.connection().execute(hold, holds)
        for subnet in subnets:  # the bitmaps now say what the rows say
            taken = {h["at"] for h in holds if h["pool"] == subnet.ip_pool_id}
            for chunk in session.scalars(
                select(IpChunk).where(IpChunk.pool_id == subnet.ip_pool_id)
            ):
                bits = int.from_bytes(chunk.bits, "little")
                for offset in range(ipam.CHUNK):
                    if chunk.chunk * ipam.CHUNK + offset in taken:
                        bits &= ~(1 << offset)
                chunk.bits, chunk.free = bits.to_bytes(ipam.CHUNK // 8, "little"), bits.bit_count()
    # each VM talks to 1..PEERS peers; a host learns its VMs' remote peers, up to the cap
    rng = random.Random(7)
    by_host: dict[str, list[dict]] = {}
    for port in ports:
        by_host.setdefault(port["host_id"], []).append(port)
    learned, expires = [], now() + timedelta(hours=1)
    for host_id, mine in by_host.items():
        if host_id in {h["id"] for h in hosts[:GATEWAYS]}:
            continue
        peers: dict[str, dict] = {}
        for _ in mine:
            for peer in rng.sample(ports, rng.randint(1, PEERS)):
                if peer["host_id"] != host_id:
                    peers[peer["id"]] = peer
        for peer in list(peers.values())[:CAP]:
            learned.append(
                {
                    "host_id": host_id,
                    "vpc_id": vpc_id,
                    "ip": peer["ip"],
                    "port_id": peer["id"],
                    "expires_at": expires,
                    "granted_at": now(),
                }
            )
    with db.session() as session:
        for start in range(0, len(learned), 10_000):
            session.execute(insert(LearnedRoute), learned[start : start + 10_000])
    return db, principal, vpc_id, subnets, [h["id"] for h in hosts], len(ports), len(learned)


def _counts(db, vpc_id: str, host_ids: list[str]) -> tuple[dict, float]:
    from yunguan.network.sdn.controller import Snapshot, versions

    started = time.perf_counter()
    with db.session(write=False) as session:
        snap = Snapshot.load(session)
        known = versions(session, host_ids)
        documents = [snap.document(h, known[h]) for h in host_ids]
    resync = time.perf_counter() - started
    ondemand = [snap.entry_count(h) for h in host_ids]
    snap.vpcs[vpc_id].routing_mode = "full"
    full = [snap.entry_count(h) for h in host_ids]
    sizes = [len(json.dumps(d)) for d in documents[:50]]
    return {
        "ondemand_total": sum(ondemand),
        "ondemand_per_host_p50": round(percentile(ondemand, 50)),
        "ondemand_per_host_max": max(ondemand),
        "full_total": sum(full),
        "full_per_host_p50": round(percentile(full, 50)),
        "ratio": round(sum(full) / sum(ondemand), 1),
        "document_kb_p50": round(percentile(sizes, 50) / 1024, 1),
    }, resync


def _creates(db, principal, subnets, host_ids: list[str]) -> dict:
    """Create ports one at a time; after each, the agents whose version moved fetch."""
    from yunguan.network import ports
    from yunguan.network.schemas import PortCreate
    from yunguan.network.sdn.controller import Snapshot, versions

    with db.session(write=False) as session:
        agents = versions(session, host_ids)
    rng = random.Random(11)
    latencies, touched = [], []
    for _ in range(CREATES):
        host = rng.choice(host_ids[GATEWAYS:])
        started = time.perf_counter()
        with db.session() as session:
            body = PortCreate(vxnet_id=rng.choice(subnets).id, host_id=host)
            ports.create_port(session, principal, body)
        with db.session(write=False) as session:
            now_at = versions(session, host_ids)
            changed = [h for h in host_ids if now_at[h] > agents[h]]
            snap = Snapshot.load(session, changed)
            for h in changed:
                snap.document(h, now_at[h])
                agents[h] = now_at[h]
        latencies.append(time.perf_counter() - started)
        touched.append(len(changed))
    return {
        "creates": CREATES,
        "hosts_updated_per_create": round(sum(touched) / len(touched), 1),
        "p50_ms": round(percentile(latencies, 50) * 1000),
        "p99_ms": round(percentile(latencies, 99) * 1000),
    }


def main() -> None:
    urls = durable_postgres(["bench_sdn"])
    if not urls:
        raise SystemExit("set YUNGUAN_TEST_PG_URL (make bench starts a PostgreSQL cluster)")
    started = time.perf_counter()
    db, principal, vpc_id, subnets, host_ids, port_count, learned = seed(urls["bench_sdn"])
    print(
        json.dumps(
            {
                "seeded_s": round(time.perf_counter() - started),
                "ports": port_count,
                "learned": learned,
            }
        ),
        flush=True,
    )
    counts, resync = _counts(db, vpc_id, host_ids)
    entries = {"figure": "entries", "hosts": len(host_ids), "ports": port_count, **counts}
    print(json.dumps(entries), flush=True)
    full_resync = {
        "figure": "full resync (ondemand)",
        "hosts": len(host_ids),
        "ports": port_count,
        "seconds": round(resync, 2),
    }
    print(json.dumps(full_resync), flush=True)
    creates = {
        "figure": "port create to documents rebuilt",
        "hosts": len(host_ids),
        "ports": port_count,
        **_creates(db, principal, subnets, host_ids),
    }
    print(json.dumps(creates), flush=True)
    db.dispose()
    record_section("bench/sdn.py", [entries, full_resync, creates], ("hosts", "ports"))


if __name__ == "__main__":
    main()
