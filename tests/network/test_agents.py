"""What the hosts' data-plane agents report (``POST /sdn/hosts/{id}/status``) and how
operators read it back (``GET /sdn/hosts/{id}``)."""

from datetime import datetime, timedelta

from tests.support.api import Api
from tests.support.network import port, sdn_zone, vpc, vxnet
from yunguan.core import clock


def _report(version: int, **fields) -> dict:
    return {"applied_version": version, "routers": 1, "entries": 12, "errors": {}, **fields}


def _state(api: Api, host_id: str) -> dict:
    return api.ok(api.get(f"/sdn/hosts/{host_id}"))


def test_an_agent_reports_and_operators_see_whether_it_is_current(admin: Api) -> None:
    site = sdn_zone(admin, hosts=2)
    host = site["hosts"][1]["id"]
    net = vpc(admin, site["zone"]["id"], "10.0.0.0/16", routing_mode="full")
    subnet = vxnet(admin, net["id"], "10.0.1.0/24")
    port(admin, subnet["id"], host)
    before = _state(admin, host)
    assert before["agent"] is None and before["host_id"] == host
    assert before["version"] == admin.ok(admin.get(f"/sdn/hosts/{host}/document"))["version"]

    start = clock.now()
    clock.set_clock(lambda: start)
    failed = {net["id"]: "RuntimeError: nft -f -: Error: Could not process rule"}
    report = _report(before["version"], errors=failed)
    assert admin.post(f"/sdn/hosts/{host}/status", report).status_code == 204
    agent = _state(admin, host)["agent"]
    assert datetime.fromisoformat(agent.pop("reported_at")) == start
    assert agent == {**report, "up_to_date": True, "stale": False}

    port(admin, subnet["id"], host)  # a newer document the agent has not applied yet
    behind = _state(admin, host)
    assert behind["version"] > before["version"] and not behind["agent"]["up_to_date"]
    clock.set_clock(lambda: start + timedelta(seconds=89))
    assert not _state(admin, host)["agent"]["stale"]
    clock.set_clock(lambda: start + timedelta(seconds=91))  # three heartbeats missed
    assert _state(admin, host)["agent"]["stale"]

    report = _report(behind["version"], routers=1, entries=13)  # caught up, errors gone
    admin.ok(admin.post(f"/sdn/hosts/{host}/status", report), 204)
    agent = _state(admin, host)["agent"]
    assert agent["up_to_date"] and not agent["stale"] and agent["errors"] == {}
    assert agent["entries"] == 13
    assert datetime.fromisoformat(agent["reported_at"]) == start + timedelta(seconds=91)


def test_bad_reports_are_refused_and_change_nothing(admin: Api) -> None:
    host = sdn_zone(admin, hosts=1)["hosts"][0]["id"]
    path = f"/sdn/hosts/{host}/status"
    admin.ok(admin.post(path, _report(3)), 204)
    for bad in (
        _report(-1),
        _report(3, entries=-5),
        _report(3, routers="many"),
        _report(3, errors={"not an id": "x"}),
        _report(3, errors={"vpc-1": "x" * 1025}),
        _report(3, errors={"vpc-1": "\x1b[31m"}),
        _report(3, errors={f"vpc-{n}": "x" for n in range(1001)}),
        _report(3, extra=1),
        {"routers": 1, "entries": 1},
    ):
        answer = admin.post(path, bad)
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "validation-error"
    malformed = admin.post(path, content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 400
    assert _state(admin, host)["agent"]["entries"] == 12
    assert admin.post("/sdn/hosts/host-nothere/status", _report(1)).status_code == 404
    # heartbeats are no audit rows; refused reports are
    audited = admin.ok(admin.get("/audit-events", params={"action": "sdn.status"}))["items"]
    assert audited and all(event["result"] == "failure" for event in audited)
    assert admin.get("/sdn/hosts/host-nothere").status_code == 404
    # the report goes with its host
    admin.ok(admin.delete(f"/hosts/{host}"), 204)
    assert admin.get(f"/sdn/hosts/{host}").status_code == 404


def test_tenant_users_neither_report_nor_read_agents(admin: Api, root_id: str) -> None:
    host = sdn_zone(admin, hosts=1)["hosts"][0]["id"]
    admin.ok(admin.post(f"/sdn/hosts/{host}/status", _report(1)), 204)
    acme = admin.tenant(root_id, "Acme")
    for role in ("member", "tenant-admin"):
        user = admin.as_user(acme["id"], f"acme-{role}", [role])
        assert user.post(f"/sdn/hosts/{host}/status", _report(9)).status_code == 403
        assert user.get(f"/sdn/hosts/{host}").status_code == 403
    assert _state(admin, host)["agent"]["applied_version"] == 1
