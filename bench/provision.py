"""Provisioning: the control plane's own cost per instance, and time to ``running``.

A real ``yunguan serve`` (one process, in-process workers) on durable PostgreSQL
(``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts one):

- simulator at zero latency, 1,000 hosts: the overhead from "API accepted" (the instance's
  ``created_at``) to the provider's create call (the simulated machine's ``created_at``),
  one instance at a time, then for 1,000 instances requested at once (end to end until
  every one runs);
- libvirt, when a daemon and the test guest are available: time from request to
  ``running`` (and to the guest's boot marker on its console) for one real VM, then five.

Prints JSON lines and appends to docs/benchmarks.md.
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select

from bench.report import durable_postgres, percentile, record_section
from tests.support.api import Api

PASSWORD = "Provision-Passw0rd!"
CONCURRENT = int(os.environ.get("BENCH_INSTANCES", "1000"))
SEQUENTIAL = 100
CLIENTS = 16


def serve(url: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "YUNGUAN_DATABASE_URL": url,
        "YUNGUAN_LOG_LEVEL": "WARNING",
        "YUNGUAN_WORKFLOW_CONCURRENCY": os.environ.get("BENCH_WORKFLOWS", "32"),
    }
    yunguan = [sys.executable, "-m", "yunguan"]
    admin = ["admin", "create-user", "--username", "bench", "--password", PASSWORD]
    subprocess.run([*yunguan, *admin, "--platform-admin"], env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [*yunguan, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not start")


def wait_all(api: Api, operation_ids: list[str], timeout: float) -> None:
    """Until none of the operations is pending or running."""
    deadline = time.monotonic() + timeout
    pending = set(operation_ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} operations still running")
        time.sleep(0.2)
        active: set[str] = set()
        for state in ("pending", "running"):
            cursor = None
            while True:
                params = {"state": state, "limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = api.ok(api.get("/operations", params=params))
                active |= {o["id"] for o in page["items"]}
                if not (cursor := page["next_cursor"]):
                    break
        pending &= active


def zone(api: Api, name: str, overcommit: int = 1) -> dict[str, Any]:
    from tests.support import topology

    made = topology.zone(api, topology.region(api, f"{name}-region")["id"], name)
    return topology.cluster(api, made["id"], f"{name}-1", cpu_overcommit=overcommit)


def register(api: Api, cluster: dict, kind: str, config: dict) -> None:
    body = {"name": kind, "kind": kind, "cluster_id": cluster["id"], "config": config}
    accepted = api.ok(api.post("/providers", body), 202)
    wait_all(api, [accepted["operation"]["id"]], 600)


def create(api: Api, flavor: str, image: str, count: int = 1) -> list[str]:
    body = {"name": "b", "flavor_id": flavor, "image_id": image, "count": count}
    answer = api.ok(api.post("/instances", body), 202)
    return [a["operation"]["id"] for a in answer.get("items", [answer])]


def overheads(db: Any, instance_ids: list[str]) -> list[float]:
    """Milliseconds from each instance's acceptance to its provider create call."""
    from yunguan.compute.models import Instance
    from yunguan.providers.models import SimulatedMachine

    with db.session(write=False) as session:
        rows = session.execute(
            select(Instance.created_at, SimulatedMachine.created_at)
            .join(SimulatedMachine, SimulatedMachine.instance_id == Instance.id)
            .where(Instance.id.in_(instance_ids))
        ).all()
    return [(made - accepted).total_seconds() * 1000 for accepted, made in rows]


def simulator(api: Api, db: Any) -> list[dict]:
    cluster = zone(api, "sim", overcommit=16)
    register(api, cluster, "simulator", {"hosts": 1000, "realm": "bench"})
    flavor = api.ok(api.post("/flavors", {"name": "b1", "vcpus": 1, "memory_mb": 1024}), 201)
    image = api.ok(
        api.post(
            "/images",
            {"name": "img", "visibility": "public", "locations": {cluster["zone_id"]: ""}},
        ),
        201,
    )
    ids = []
    started = time.monotonic()
    for _ in range(SEQUENTIAL):
        operation = create(api, flavor["id"], image["id"])
        wait_all(api, operation, 60)
        ids.append(api.ok(api.get(f"/operations/{operation[0]}"))["target_id"])
    one_by_one = time.monotonic() - started
    alone = overheads(db, ids)

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        batches = list(
            pool.map(lambda _: create(api, flavor["id"], image["id"]), range(CONCURRENT))
        )
    accepted_s = time.monotonic() - started
    operations = [o for batch in batches for o in batch]
    wait_all(api, operations, 3600)
    total_s = time.monotonic() - started
    ids = [api.ok(api.get(f"/operations/{o}"))["target_id"] for o in operations]
    running = api.ok(api.get("/instances", params={"state": "running", "limit": 1000}))
    loaded = overheads(db, ids)
    return [
        {
            "figure": "API accepted -> provider create, one at a time",
            "provider": "simulator (0 latency)",
            "instances": SEQUENTIAL,
            "p50_ms": round(percentile(alone, 50), 1),
            "p99_ms": round(percentile(alone, 99), 1),
            "end_to_end_per_instance_ms": round(one_by_one / SEQUENTIAL * 1000, 1),
        },
        {
            "figure": f"{CONCURRENT} concurrent creates, end to end",
            "provider": "simulator (0 latency)",
            "instances": CONCURRENT,
            "clients": CLIENTS,
            "accepted_in_s": round(accepted_s, 1),
            "all_running_in_s": round(total_s, 1),
            "instances_per_s": round(CONCURRENT / total_s, 1),
            "overhead_p50_ms": round(percentile(loaded, 50), 1),
            "overhead_p99_ms": round(percentile(loaded, 99), 1),
            "running_listed": len(running["items"]),
        },
    ]


def libvirt_vms(api: Api) -> list[dict]:
    from tests.support import guest_image, libvirtd

    try:
        daemon, guest = libvirtd.daemon(), guest_image.guest()
    except libvirtd.Unavailable as exc:
        print(json.dumps({"bench": "provision", "libvirt": f"skipped: {exc}"}), flush=True)
        return []
    cluster = zone(api, "kvm", overcommit=8)
    config = {
        "uri": daemon.uri,
        "storage_pool": "yunguan-bench",
        "pool_path": "/var/lib/libvirt/yunguan-bench/pool",
        "bridge": daemon.bridge,
        "console_dir": "/var/lib/libvirt/yunguan-bench/console",
        "stop_grace_seconds": 1,
    }
    register(api, cluster, "libvirt", config)
    flavor = api.ok(
        api.post("/flavors", {"name": "t1", "vcpus": 1, "memory_mb": 128, "disk_gb": 1}), 201
    )
    properties = {
        "kernel": str(guest.kernel),
        "initrd": str(guest.initrd),
        "cmdline": guest.cmdline,
    }
    body = {"name": "busybox", "visibility": "public", "locations": {cluster["zone_id"]: ""}}
    image = api.ok(api.post("/images", {**body, "properties": properties}), 201)
    results = []
    for count in (1, 5):
        started = time.monotonic()
        operations = create(api, flavor["id"], image["id"], count)
        wait_all(api, operations, 600)
        running_s = time.monotonic() - started
        ids = [api.ok(api.get(f"/operations/{o}"))["target_id"] for o in operations]
        while not all(
            guest_image.MARKER in api.ok(api.get(f"/instances/{i}/console"))["output"] for i in ids
        ):
            time.sleep(0.2)
        booted_s = time.monotonic() - started
        results.append(
            {
                "figure": f"libvirt: {count} real VM(s) to running",
                "provider": "libvirt, TCG",
                "instances": count,
                "running_in_s": round(running_s, 1),
                "guest_booted_in_s": round(booted_s, 1),
            }
        )
        deletions = [api.ok(api.delete(f"/instances/{i}"), 202)["operation"]["id"] for i in ids]
        wait_all(api, deletions, 300)  # leave no VM behind
    return results


def main() -> None:
    from bench.api import free_port
    from yunguan.core.db import Database

    urls = durable_postgres(["yunguan_provision"])
    if not urls:
        sys.exit("run it through make bench (needs YUNGUAN_TEST_PG_URL)")
    url = urls["yunguan_provision"]
    port = free_port()
    process = serve(url, port)
    db = Database(url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            api = Api(http).login("bench", PASSWORD)
            results = simulator(api, db) + libvirt_vms(api)
    finally:
        process.terminate()
        process.wait(30)
        db.dispose()
    for result in results:
        print(json.dumps({"bench": "provision", **result}), flush=True)
    record_section("Provisioning (bench/provision.py)", results, ("provider", "instances"))


if __name__ == "__main__":
    main()
