"""Quota admission: checks/s and latency on a tree of 10,000 tenants of depth 6, on
PostgreSQL (``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts a durable throw-away cluster)
with 16 concurrent clients.

Each operation is one transaction: reserve 1 vCPU at a random leaf (locking its path root
first), then, half the time, release an earlier reservation. Every tenant has a guarantee,
so admission really computes along the path. Prints JSON lines and appends to
docs/benchmarks.md.
"""

import json
import os
import random
import threading
import time

from bench.report import durable_postgres, percentile, record_section

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
FANOUT = (10, 4, 4, 4, 4, 4)  # 10 + 40 + 160 + 640 + 2,560 + 10,240 tenants below the root


def seed(url: str) -> tuple[object, list[str]]:
    """The tree, bulk-inserted, with guarantees that fit; the leaves."""
    from sqlalchemy import insert

    from yunguan.core.db import Database
    from yunguan.core.ids import new_id
    from yunguan.core.migrate import upgrade
    from yunguan.identity.models import Tenant
    from yunguan.identity.scope import Principal
    from yunguan.identity.service import ensure_root_tenant
    from yunguan.models import load_all
    from yunguan.quota import service
    from yunguan.quota.schemas import QuotaChange

    load_all()
    db = Database(url)
    upgrade(db)
    with db.session() as session:
        root = ensure_root_tenant(session)
        operator = Principal("u-bench", "bench", root.id, root.path, frozenset({"platform-admin"}))
        level, rows, tree = [root], [], []
        for fanout in FANOUT:
            below = []
            for parent in level:
                for n in range(fanout):
                    tenant_id = new_id("t")
                    row = {"id": tenant_id, "name": f"n{n}", "parent_id": parent.id}
                    row["path"] = f"{parent.path}{tenant_id}/"
                    rows.append(row)
                    below.append(Tenant(**row))
            tree.append(below)
            level = below
        for start in range(0, len(rows), 5000):
            session.execute(insert(Tenant), rows[start : start + 5000])
    guarantee = 10**6
    for depth, tenants in enumerate(tree):  # top-down: each level shares its parent's
        guarantee //= FANOUT[depth]
        change = QuotaChange(resource="vcpus", guarantee=guarantee, lend_limit=guarantee)
        for start in range(0, len(tenants), 200):  # short sessions: small identity maps
            with db.session() as session:
                for tenant in tenants[start : start + 200]:
                    service.configure(session, operator, tenant.id, change)
    return db, [t.id for t in tree[-1]]


def run(url: str) -> dict:
    from yunguan.quota import service

    db, leaves = seed(url)
    latencies: list[float] = []
    refused = [0]
    deadline = time.perf_counter() + SECONDS

    def client(seed_: int) -> None:
        rng, held = random.Random(seed_), []
        while time.perf_counter() < deadline:
            leaf = rng.choice(leaves)
            started = time.perf_counter()
            try:
                with db.session() as session:
                    held.append(service.reserve(session, leaf, {"vcpus": 1}).id)
                    if len(held) > 4 and rng.random() < 0.5:
                        service.release(session, held.pop(0))
            except service.QuotaExceeded:
                refused[0] += 1
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with db.session() as session:
        wrong = service.reconcile(session)
    db.dispose()
    return {
        "figure": "admission",
        "tenants": sum(_count(d) for d in range(len(FANOUT))),
        "depth": len(FANOUT),
        "clients": CLIENTS,
        "checks_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "refused": refused[0],
        "caches_wrong_after": wrong,
    }


def _count(depth: int) -> int:
    total = 1
    for fanout in FANOUT[: depth + 1]:
        total *= fanout
    return total


def main() -> None:
    urls = durable_postgres(["bench_quota"])
    if not urls:
        raise SystemExit("set YUNGUAN_TEST_PG_URL (make bench starts a PostgreSQL cluster)")
    result = run(urls["bench_quota"])
    print(json.dumps(result), flush=True)
    record_section("bench/quota.py", [result], ("tenants", "depth", "clients"))


if __name__ == "__main__":
    main()
