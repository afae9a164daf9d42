"""IPAM: allocations/s from a /16 with 64 concurrent clients on PostgreSQL
(``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts a durable throw-away cluster), and
allocation latency when the pool is 95% full, with 64 clients and with one.

Clients are spread over processes (4 x 16 threads by default) so that the Python side is
not one interpreter's lock. Every allocation is its own transaction. Phase 1 allocates from
the empty pool; phase 2 fills the pool to 95% and has every client allocate and give back
an address in turn, so it stays 95% full. Prints JSON lines and appends to
docs/benchmarks.md.
"""

import json
import multiprocessing
import os
import threading
import time
from collections import Counter

from bench.report import durable_postgres, percentile, record_section

PROCESSES = int(os.environ.get("BENCH_PROCESSES", "4"))
THREADS = int(os.environ.get("BENCH_THREADS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CIDR = "10.0.0.0/16"


def seed(url: str) -> str:
    """A /16 guest pool (65,534 addresses); its id."""
    from yunguan.core.db import Database
    from yunguan.core.ids import new_id
    from yunguan.core.migrate import upgrade
    from yunguan.inventory.models import Region, Zone
    from yunguan.models import load_all
    from yunguan.network import pools

    load_all()
    db = Database(url)
    upgrade(db)
    with db.session() as session:
        session.add(Region(id="reg-bench", name="bench"))
        session.add(Zone(id="zone-bench", name="bench", region_id="reg-bench"))
        session.flush()
        pool = pools.new_pool(
            session,
            name=new_id("bench"),
            zone_id="zone-bench",
            cidr=CIDR,
            gateway=None,
            ranges=[],
            reserved=[],
        )
        pool_id = pool.id
    db.dispose()
    return pool_id


def _clients(url: str, pool_id: str, name: str, churn: bool, threads: int, out) -> None:
    """One process: ``threads`` clients until the deadline; sends back latencies."""
    from yunguan.core.db import Database
    from yunguan.network import ipam

    db = Database(url)
    deadline = time.perf_counter() + SECONDS
    latencies: list[float] = []
    exhausted = [0]

    def client(n: int) -> None:
        held: list[str] = []
        count = 0
        while time.perf_counter() < deadline:
            owner = f"{name}-{n}-{count}"
            count += 1
            started = time.perf_counter()
            try:
                with db.session() as session:
                    ipam.allocate(session, pool_id, owner)
            except ipam.PoolExhausted:
                exhausted[0] += 1
                continue
            latencies.append(time.perf_counter() - started)
            held.append(owner)
            if churn:
                with db.session() as session:
                    ipam.release(session, held.pop(0))

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    db.dispose()
    out.put({"latencies": latencies, "exhausted": exhausted[0]})


def _phase(url: str, pool_id: str, churn: bool, processes_: int, threads: int) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(
            target=_clients, args=(url, pool_id, f"p{n}", churn, threads, queue)
        )
        for n in range(processes_)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "clients": processes_ * threads,
        "allocations_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "exhausted": sum(r["exhausted"] for r in results),
    }


def _fill(url: str, pool_id: str, fraction: float) -> int:
    """Hand out ``fraction`` of the pool at once (as if long-lived instances held it)."""
    from sqlalchemy import text

    from yunguan.core.db import Database

    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE ip_addresses SET owner_id = 'bulk-' || position "
                "WHERE pool_id = :p AND owner_id IS NULL AND position < :n"
            ),
            {"p": pool_id, "n": int(65_534 * fraction)},
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ip_addresses"))
    db.dispose()
    return int(65_534 * fraction)


def _check(url: str, pool_id: str) -> dict:
    """No address has two owners (the key makes that impossible) and the counts add up."""
    from sqlalchemy import text

    from yunguan.core.db import Database

    db = Database(url)
    with db.engine.connect() as conn:
        owners = Counter(
            owner
            for (owner,) in conn.execute(
                text(
                    "SELECT owner_id FROM ip_addresses WHERE pool_id = :p AND owner_id IS NOT NULL"
                ),
                {"p": pool_id},
            )
        )
        total = conn.execute(
            text("SELECT count(*) FROM ip_addresses WHERE pool_id = :p"), {"p": pool_id}
        )
    db.dispose()
    return {"owners_twice": sum(1 for c in owners.values() if c > 1), "total": total.scalar()}


def main() -> None:
    urls = durable_postgres(["bench_ipam"])
    if not urls:
        raise SystemExit("set YUNGUAN_TEST_PG_URL (make bench starts a PostgreSQL cluster)")
    url = urls["bench_ipam"]
    pool_id = seed(url)
    empty = {
        "figure": "allocate from a fresh /16",
        **_phase(url, pool_id, False, PROCESSES, THREADS),
    }
    print(json.dumps(empty), flush=True)
    # start phase 2 from a clean 95%: give back what phase 1 took, then fill
    from sqlalchemy import text

    from yunguan.core.db import Database

    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE ip_addresses SET owner_id = NULL WHERE pool_id = :p"), {"p": pool_id}
        )
    db.dispose()
    held = _fill(url, pool_id, 0.95)
    results = [empty]
    for processes, threads in ((PROCESSES, THREADS), (1, 1)):
        full = {
            "figure": "allocate (+ release) at 95% full",
            "held": held,
            **_phase(url, pool_id, True, processes, threads),
            **_check(url, pool_id),
        }
        print(json.dumps(full), flush=True)
        results.append(full)
    record_section("bench/ipam.py", results, ("clients", "held"))


if __name__ == "__main__":
    main()
