"""Parallel requests against a real server: unique names win once, nothing half-created."""

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.api import Api


def _create(url: str, token: str, parent: str, name: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post(
            "/api/v1/tenants",
            json={"name": name, "parent_id": parent},
            headers={"Authorization": f"Bearer {token}"},
        )
        return answer.status_code


def test_twenty_parallel_creations_under_one_parent(
    live_url: str, live_admin: Api, root_id: str
) -> None:
    parent = live_admin.tenant(root_id, "Parallel")["id"]
    names = [f"team-{i % 14}" for i in range(20)]  # six of them collide
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda n: _create(live_url, live_admin.token, parent, n), names))
    assert sorted(set(statuses)) == [201, 409]
    assert statuses.count(201) == 14
    children = live_admin.ok(live_admin.get("/tenants", params={"parent_id": parent}))["items"]
    assert sorted(c["name"] for c in children) == sorted(set(names))
    assert all(
        c["path"] == f"/{c['path'].strip('/')}/" and c["parent_id"] == parent for c in children
    )
    creations = live_admin.ok(
        live_admin.get("/audit-events", params={"action": "tenant.create", "limit": 100})
    )["items"]
    ours = [e for e in creations if e["status_code"] in (201, 409) and e["target_id"] != parent]
    assert sum(e["result"] == "success" for e in ours) == 14
