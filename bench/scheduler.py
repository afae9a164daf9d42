"""Scheduler: decision latency, committed placements/s, packing quality, memory.

1. In memory: p50/p99 of one decision and decisions/s at 1k, 10k and 100k hosts.
2. Committed: claims through the scheduler service, each its own transaction, by one and
   by several scheduler processes, on SQLite (a file, WAL, synchronous=NORMAL) and on
   PostgreSQL (``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts a durable throw-away
   cluster), at 5k and 100k hosts.
3. Packing: 20,000 mixed-flavour requests; ``pack`` against an online best-fit baseline
   (hosts used, and the ratio to the lower bound Σ demand ÷ host capacity); ``spread``
   reports the standard deviation of host utilisation.
4. Memory held by the host table at 100k hosts (tracemalloc).

Prints one JSON line per figure and appends a section to docs/benchmarks.md.
"""

import json
import math
import multiprocessing
import os
import random
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

from bench.report import durable_postgres, percentile, record_section

ROOT = Path(__file__).resolve().parent.parent
# vcpus, memory MB: 1 to 8 GB per vcpu, so both dimensions matter when packing
FLAVOURS = [(1, 1024), (2, 2048), (2, 4096), (4, 8192), (4, 16384), (8, 16384), (8, 32768)]
FLAVOURS += [(16, 65536), (2, 16384), (4, 32768)]
HOST = {"cpu_cores": 32, "memory_mb": 131072, "disk_gb": 2000}
CPU_OVERCOMMIT = 4
COMMIT_SECONDS = float(os.environ.get("BENCH_COMMIT_SECONDS", "8"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))
results: list[dict] = []


def emit(**figures) -> None:
    results.append(figures)
    print(json.dumps(figures), flush=True)


# --- 1. in-memory decisions ----------------------------------------------------------------


def synthetic_table(hosts: int, zones: int = 10, cpu_overcommit: int = CPU_OVERCOMMIT):
    """A HostTable over ``hosts`` identical hosts in ``zones`` public zones, no database."""
    from yunguan.scheduler.hosts import HostTable

    rows = []
    for n in range(hosts):
        rows.append(
            SimpleNamespace(
                id=f"host-{n:07d}",
                name=f"h{n}",
                zone_id=f"zone-{n % zones}",
                cluster_id=f"cl-{n // 500}",
                state="enabled",
                traits=["ssd"] if n % 3 == 0 else [],
                vcpu_limit=HOST["cpu_cores"] * cpu_overcommit,
                memory_limit_mb=HOST["memory_mb"],
                disk_limit_gb=HOST["disk_gb"],
                gpus=0,
                used_vcpus=0,
                used_memory_mb=0,
                used_disk_gb=0,
                used_gpus=0,
                claims=0,
                cpu_sockets=2,
                cpu_mhz=2600,
                disk_count=2,
                disk_gb=HOST["disk_gb"],
                memory_mb=HOST["memory_mb"],
            )
        )
    clusters = {f"cl-{c}": ("kvm", None) for c in range(hosts // 500 + 1)}
    zone_rows = [(f"zone-{z}", True, []) for z in range(zones)]
    return HostTable(("bench", 1), rows, clusters, [], zone_rows, [])


def demands(count: int, seed: int = 7, **fields):
    from yunguan.scheduler.hosts import Demand

    rng = random.Random(seed)
    for _ in range(count):
        vcpus, memory = rng.choice(FLAVOURS)
        yield Demand(tenant_path="/t-root/", vcpus=vcpus, memory_mb=memory, disk_gb=20, **fields)


def bench_decisions() -> None:
    for hosts in (1_000, 10_000, 100_000):
        table = synthetic_table(hosts)
        for strategy in ("spread", "pack"):
            table.tenant_policy = {"t-root": (strategy, None)}
            latencies = []
            started = time.perf_counter()
            for demand in demands(3000):
                t0 = time.perf_counter()
                decision = table.decide(demand)
                latencies.append(time.perf_counter() - t0)
                table.add(decision.host, demand)
            elapsed = time.perf_counter() - started
            emit(
                figure="decision",
                hosts=hosts,
                strategy=strategy,
                p50_ms=round(percentile(latencies, 50) * 1000, 3),
                p99_ms=round(percentile(latencies, 99) * 1000, 3),
                decisions_per_s=round(len(latencies) / elapsed),
            )
        zone_demand = next(demands(1, zone_id="zone-3", traits=("ssd",)))
        latencies = []
        for _ in range(1000):
            t0 = time.perf_counter()
            table.decide(zone_demand)
            latencies.append(time.perf_counter() - t0)
        emit(
            figure="decision",
            hosts=hosts,
            strategy="spread, zone + trait filters",
            p50_ms=round(percentile(latencies, 50) * 1000, 3),
            p99_ms=round(percentile(latencies, 99) * 1000, 3),
            decisions_per_s=round(1000 / sum(latencies)),
        )


# --- 2. committed placements ---------------------------------------------------------------


def seed(url: str, hosts: int) -> tuple[str, object]:
    """A data centre of ``hosts`` hosts (10 zones, 500 hosts a cluster); the operator."""
    from yunguan.core.db import Database
    from yunguan.core.migrate import upgrade
    from yunguan.identity.scope import Principal
    from yunguan.identity.service import ensure_root_tenant
    from yunguan.inventory import schemas
    from yunguan.inventory import service as inventory
    from yunguan.models import load_all

    load_all()
    db = Database(url)
    upgrade(db)
    with db.session() as session:
        root = ensure_root_tenant(session)
        operator = Principal("u-bench", "bench", root.id, root.path, frozenset({"platform-admin"}))
        region = inventory.create_region(session, operator, schemas.RegionCreate(name="bench"))
        clusters = []
        for z in range(10):
            zone = inventory.create_zone(
                session, operator, schemas.ZoneCreate(name=f"z{z}", region_id=region.id)
            )
            pod = inventory.create_pod(
                session, operator, schemas.PodCreate(name="p", zone_id=zone.id)
            )
            for c in range(max(1, hosts // 10 // 500)):
                body = schemas.ClusterCreate(
                    name=f"c{c}", pod_id=pod.id, hypervisor="kvm", cpu_overcommit=CPU_OVERCOMMIT
                )
                clusters.append(inventory.create_cluster(session, operator, body).id)
        rows = [
            {"name": f"h{n}", "cluster_id": clusters[n % len(clusters)], **HOST}
            for n in range(hosts)
        ]
        inventory.insert_hosts(session, rows)
    return root.id, (db, operator)


def _claim_for(url: str, tenant_id: str, operator, seconds: float, seed_: int) -> list[float]:
    """One scheduler process: claim until the time is up; the latency of each claim."""
    from yunguan.core.db import Database
    from yunguan.scheduler import service as scheduler
    from yunguan.scheduler.schemas import ClaimCreate

    db, rng, latencies = Database(url), random.Random(seed_), []
    with db.session(write=False) as session:
        scheduler.host_table(session)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        vcpus, memory = rng.choice(FLAVOURS)
        request = ClaimCreate(tenant_id=tenant_id, vcpus=vcpus, memory_mb=memory, disk_gb=20)
        started = time.perf_counter()
        with db.session() as session:
            scheduler.claim(session, operator, request)
        latencies.append(time.perf_counter() - started)
    db.dispose()
    return latencies


def bench_commits(backend: str, url: str, hosts: int, processes: int) -> None:
    """``processes`` schedulers, each its own process with its own host table."""
    tenant_id, (db, operator) = seed(url, hosts)
    db.dispose()
    t0 = time.perf_counter()
    _claim_for(url, tenant_id, operator, 0, 0)  # how long a scheduler takes to load
    load_s = time.perf_counter() - t0
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        started = time.perf_counter()
        batches = pool.starmap(
            _claim_for, [(url, tenant_id, operator, COMMIT_SECONDS, n) for n in range(processes)]
        )
    latencies = [latency for batch in batches for latency in batch]
    emit(
        figure="committed",
        backend=backend,
        hosts=hosts,
        processes=processes,
        placements_per_s=round(len(latencies) / COMMIT_SECONDS),
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        scheduler_load_s=round(load_s, 2),
        wall_s=round(time.perf_counter() - started, 1),
    )


# --- 3. packing quality --------------------------------------------------------------------


def best_fit_baseline(stream, vcpu_limit: int, memory_limit: int) -> int:
    """Online best fit, the textbook baseline: the open host left with the least free
    memory that still fits (vcpus checked too); a new host only when none fits."""
    open_hosts: list[list[int]] = []  # [free vcpus, free memory]
    for demand in stream:
        best = None
        for free in open_hosts:
            fits = free[0] >= demand.vcpus and free[1] >= demand.memory_mb
            if fits and (best is None or free[1] < best[1]):
                best = free

        if best is None:
            best = [vcpu_limit, memory_limit]
            open_hosts.append(best)
        best[0] -= demand.vcpus
        best[1] -= demand.memory_mb
    return len(open_hosts)


def bench_packing(requests: int = 20_000) -> None:
    """Hosts of 32 vcpus (no overcommit) and 128 GB; the stream needs both dimensions."""
    stream = list(demands(requests, seed=11))
    vcpu_limit, memory_limit = HOST["cpu_cores"], HOST["memory_mb"]
    lower_bound = max(
        math.ceil(sum(d.vcpus for d in stream) / vcpu_limit),
        math.ceil(sum(d.memory_mb for d in stream) / memory_limit),
    )
    baseline = best_fit_baseline(stream, vcpu_limit, memory_limit)
    hosts = int(lower_bound * 1.3)
    for strategy in ("pack", "spread"):
        table = synthetic_table(hosts, zones=1, cpu_overcommit=1)
        table.tenant_policy = {"t-root": (strategy, None)}
        refused = 0
        for demand in stream:
            decision = table.decide(demand)
            if decision.host is None:
                refused += 1
            else:
                table.add(decision.host, demand)
        used = table.claims > 0
        utilisation = table.utilisation()
        emit(
            figure="packing",
            strategy=strategy,
            requests=requests,
            hosts_available=hosts,
            hosts_used=int(used.sum()),
            refused=refused,
            best_fit_baseline_hosts=baseline,
            lower_bound_hosts=lower_bound,
            ratio_to_lower_bound=round(int(used.sum()) / lower_bound, 4),
            utilisation_stdev=round(float(utilisation.std()), 4),
            utilisation_mean=round(float(utilisation.mean()), 4),
        )


# --- 4. memory -----------------------------------------------------------------------------


def bench_memory(hosts: int = 100_000) -> None:
    rows = synthetic_table(10)  # warm imports outside the measurement
    del rows
    tracemalloc.start()
    table = synthetic_table(hosts)
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrays = sum(a.nbytes for a in (*table.limit, *table.used, table.zone, table.pool))
    arrays += table.traits.nbytes + table.profile.nbytes + table.claims.nbytes
    emit(
        figure="memory",
        hosts=hosts,
        table_mib=round(current / 2**20, 1),
        numpy_arrays_mib=round(arrays / 2**20, 1),
    )


# --- running and recording -----------------------------------------------------------------


COMMIT_HOSTS = (5_000, 100_000)


def main() -> None:
    bench_decisions()
    bench_packing()
    bench_memory()
    with tempfile.TemporaryDirectory() as workdir:
        for hosts in COMMIT_HOSTS:
            for processes in (1, PROCESSES):
                url = f"sqlite:///{workdir}/bench-{hosts}-{processes}.db"
                bench_commits("sqlite", url, hosts, processes)
    for processes in (1, PROCESSES):
        names = {f"bench_sched_{hosts}": hosts for hosts in COMMIT_HOSTS}
        for name, url in durable_postgres(names).items():
            bench_commits("postgresql", url, names[name], processes)
    keys = ("hosts", "strategy", "backend", "processes", "requests", "hosts_available")
    record_section("bench/scheduler.py", results, keys)


if __name__ == "__main__":
    main()
