"""A prepaid account below zero: its running instances are stopped by the next hourly run,
and deleted once the retention period is over and it is still below zero (the simulator)."""

import time

import pytest

from tests.billing.conftest import account, book
from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.compute import created, simulated_zone
from tests.support.network import vpc, vxnet

pytestmark = pytest.mark.usefixtures("workflows")


def settled(api: Api, instance_id: str, state: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (instance := api.ok(api.get(f"/instances/{instance_id}")))["state"] != state:
        assert time.monotonic() < deadline, instance
        time.sleep(0.2)
    return instance


def test_below_zero_stops_then_releases_the_accounts_instances(biller: Api, root_id: str, clock):
    place = simulated_zone(biller)
    tenant = biller.tenant(root_id, "Acme")
    member = biller.as_user(tenant["id"], "dev", ["member"])
    network = vpc(member, place["zone"]["id"], "10.1.0.0/16")
    vxnet(member, network["id"], "10.1.1.0/24")
    book(biller, "list", [{"meter": "instance.running", "unit_price": "100.00"}])
    acct = account(biller, tenant["id"], mode="prepaid")
    top_up = {"action": "top-up", "amount": "10.00", "reference": "r1"}
    biller.ok(biller.post(f"/billing-accounts/{acct['id']}/actions", top_up))
    instance = created(member, place)
    assert instance["state"] == "running"

    clock.advance(hours=1)
    biller = biller.login("admin", ADMIN_PASSWORD)
    summary = biller.ok(biller.post("/billing-runs", {}))
    assert summary["operations"] == 1  # 106.00 charged: suspended, the instance stopped
    assert biller.ok(biller.get("/wallets"))["items"][0]["state"] == "suspended"
    settled(biller, instance["id"], "stopped")

    clock.advance(days=8)  # past the 7 days of retention, still below zero
    biller = biller.login("admin", ADMIN_PASSWORD)
    biller.ok(biller.post("/billing-runs", {}))
    settled(biller, instance["id"], "deleted")
