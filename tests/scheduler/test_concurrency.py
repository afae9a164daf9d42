"""Many schedulers at once — threads of one process and separate processes, each with its
own picture of the hosts — never put more on a host than it can take."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support import placement, topology
from tests.support.api import Api

WORKER = """
import json, random, sys
from yunguan.core.db import Database
from tests.support import placement
db = Database(sys.argv[1])
principal = placement.operator(sys.argv[2])
rng = random.Random(int(sys.argv[3]))
held = []
sys.stdin.readline()  # start together with the others
while True:

    request = {"tenant_id": sys.argv[2], "vcpus": rng.randint(1, 4), "memory_mb": 1024}
    claim_id = placement.claim(db, principal, **request, group_id=sys.argv[4])
    if claim_id is None:
        claim_id = placement.claim(db, principal, **request)
    if claim_id is None:
        break
    held.append(claim_id)
print(json.dumps(held))
"""


def _fill(db, principal, root_id: str, seed: int, group_id: str) -> list[str]:
    import random

    rng, held = random.Random(seed), []
    while True:
        request = {"tenant_id": root_id, "vcpus": rng.randint(1, 4), "memory_mb": 1024}
        claim_id = placement.claim(db, principal, **request, group_id=group_id)
        claim_id = claim_id or placement.claim(db, principal, **request)
        if claim_id is None:
            return held
        held.append(claim_id)


def test_threads_and_processes_claiming_together_never_overfill(
    admin: Api, root_id: str, db
) -> None:
    dc = topology.datacentre(admin, hosts=30)
    group = {"name": "spread-out", "tenant_id": root_id, "policy": "anti-affinity"}
    group_id = admin.ok(admin.post("/placement-groups", group), 201)["id"]
    principal = placement.operator(root_id)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db.url, root_id, str(seed), group_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for seed in range(3)
    ]
    time.sleep(3)  # let them import and connect
    for process in processes:
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
    with ThreadPoolExecutor(8) as pool:
        threads = list(pool.map(lambda s: _fill(db, principal, root_id, s, group_id), range(8)))
    from_processes = [json.loads(p.communicate(timeout=300)[0]) for p in processes]
    assert all(p.returncode == 0 for p in processes)

    held = [c for batch in threads + from_processes for c in batch]
    assert len(held) == len(set(held))
    assert any(from_processes) and any(threads)  # both kinds of scheduler did place

    assert placement.overfull(db) == []
    assert placement.anti_affinity_broken(db, group_id) == []
    hosts = admin.ok(admin.get("/hosts", params={"limit": 100}))["items"]
    # schedulers stop at their first refusal, so a few cores stay free; most are used
    assert sum(h["used_vcpus"] for h in hosts) > 0.8 * sum(h["vcpu_limit"] for h in hosts)

    assert len(hosts) == len(dc["hosts"])
