"""Concurrent claims against one guarantee: exactly the ones that fit are admitted, from
threads and from separate processes."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.support.api import Api
from tests.support.quotas import node, reserve, set_limit

CLAIM = """
import json, sys
from yunguan.core.db import Database
from yunguan.quota import service
db = Database(sys.argv[1])
sys.stdin.readline()
try:
    with db.session() as session:
        service.commit(session, service.reserve(session, sys.argv[2], {"vcpus": 2}).id)
    print(json.dumps(True))
except service.QuotaExceeded:
    print(json.dumps(False))
"""


def _claim(db, tenant_id: str) -> bool:
    from yunguan.quota import service

    try:
        with db.session() as session:
            service.commit(session, service.reserve(session, tenant_id, {"vcpus": 2}).id)
        return True
    except service.QuotaExceeded:
        return False


def test_two_claims_for_the_last_two_units_admit_exactly_one(admin: Api, root_id: str, db) -> None:
    t1 = admin.tenant(root_id, "T1")
    set_limit(admin, t1["id"], guarantee=8, borrow_limit=0)
    admin.ok(reserve(admin, t1["id"], 6), 201)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, db.url, t1["id"]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    import time

    time.sleep(2)  # let them import and connect
    for process in processes:
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
    with ThreadPoolExecutor(2) as pool:
        from_threads = list(pool.map(lambda _: _claim(db, t1["id"]), range(2)))
    from_processes = [json.loads(p.communicate(timeout=60)[0]) for p in processes]
    assert sorted(from_threads + from_processes) == [False, False, False, True]
    assert node(admin, t1["id"])["subtree_usage"] == 8
