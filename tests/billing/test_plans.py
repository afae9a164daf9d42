"""Plan subscriptions and packages: a monthly plan prorated by days across changes of plan
and quantity, an hourly plan, and packages whose included usage comes off the bill so that
only the overage is paid (priced from the first tier). March 2027 has 31 days, April 30;
the accounts bill in Asia/Shanghai."""

import json
from datetime import datetime

import pytest

from tests.billing.conftest import NOW, account, amounts, bill, book, event, send
from tests.billing.test_examples import hourly
from tests.network.test_portal import Portal
from tests.orders.test_portal import row_of
from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.clock import Clock

TIERS = [
    {"upper": "10", "unit_price": "0.80"},
    {"upper": "50", "unit_price": "0.50"},
    {"upper": None, "unit_price": "0.40"},
]
EGRESS = {"meter": "network.egress_gb", "basis": "unit", "model": "graduated", "tiers": TIERS}


def plan(name: str, price: str, basis: str = "day", **fields) -> dict:
    return {"meter": "subscription", "price_key": name, "basis": basis, "unit_price": price}


def at(clock: Clock, admin: Api, moment: str) -> Api:
    """The clock at ``moment``; the administrator signed in again on it."""
    clock.now = datetime.fromisoformat(moment)
    return admin.login("admin", ADMIN_PASSWORD)


@pytest.fixture
def acme(biller: Api, root_id: str) -> dict:
    return biller.tenant(root_id, "Acme")


def refused(answer, status: int, code: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert code is None or answer.json()["code"] == code, answer.text


def lines_by(invoice: dict, key: str = "price_key") -> dict[str, dict]:
    return {line[key]: line for line in invoice["lines"] if line["resource_type"] != "package"}


def test_a_monthly_plan_is_prorated_by_days_across_changes(clock: Clock, biller: Api, acme: dict):
    book(biller, "list", [plan("basic", "31.00"), plan("pro", "62.00")])
    acct = account(biller, acme["id"])
    admin = at(clock, biller, "2027-03-10T10:00:00+08:00")
    sub = admin.ok(
        admin.post("/plan-subscriptions", {"tenant_id": acme["id"], "plan": "basic"}), 201
    )
    assert (sub["state"], sub["quantity"], sub["plan"]) == ("active", 1, "basic")
    path = f"/plan-subscriptions/{sub['id']}"
    admin = at(clock, admin, "2027-03-20T15:00:00+08:00")
    admin.ok(admin.patch(path, {"plan": "pro"}))
    admin = at(clock, admin, "2027-03-25T09:00:00+08:00")
    changed = admin.ok(admin.patch(path, {"quantity": 2}))
    assert (changed["plan"], changed["quantity"], changed["changes"]) == ("pro", 2, 2)
    admin = at(clock, admin, "2027-03-28T18:00:00+08:00")
    admin.ok(admin.delete(path), 204)
    ended = admin.ok(admin.get(path))
    assert (ended["state"], ended["ended_at"]) == ("ended", "2027-03-28T10:00:00Z")
    refused(admin.patch(path, {"plan": "basic"}), 409, "subscription-ended")
    admin.ok(admin.delete(path), 204)  # ending again changes nothing

    admin = at(clock, admin, NOW.isoformat())
    march = bill(admin, acct["id"], "2027-03")
    by_plan = lines_by(march)
    # basic: days 10..19 (10 of 31) = 10.00; pro: days 20..24 once and 25..27 twice
    # (5 + 6 = 11 of 31) = 22.00; the 28th, its last day, is not billed
    assert by_plan["basic"]["amount"] == "10.00"
    assert by_plan["pro"]["amount"] == "22.00"
    assert by_plan["pro"]["basis"] == "day"
    assert (march["subtotal"], march["tax"], march["total"]) == ("32.00", "1.92", "33.92")


def test_an_hourly_plan_is_billed_by_the_hour(clock: Clock, biller: Api, acme: dict):
    book(biller, "list", [plan("hourly", "0.50", basis="hour")])
    acct = account(biller, acme["id"])
    admin = at(clock, biller, "2027-04-02T08:00:00+08:00")
    sub = admin.ok(
        admin.post("/plan-subscriptions", {"tenant_id": acme["id"], "plan": "hourly"}), 201
    )
    admin = at(clock, admin, "2027-04-02T18:30:00+08:00")
    admin.ok(admin.delete(f"/plan-subscriptions/{sub['id']}"), 204)
    admin = at(clock, admin, NOW.isoformat())
    april = bill(admin, acct["id"], "2027-04")
    assert amounts(april) == ["5.25"]  # 10.5 h at 0.50


def test_a_package_includes_usage_and_the_overage_is_priced(clock: Clock, biller: Api, acme: dict):
    bundle = plan("bundle", "100.00")
    bundle["included"] = [
        {"meter": "instance.running", "price_key": "fl-2c4g", "quantity": "200"},
        {"meter": "network.egress_gb", "quantity": "100"},
    ]
    book(biller, "list", [bundle, hourly("0.50", "fl-2c4g"), EGRESS])
    acct = account(biller, acme["id"])
    admin = at(clock, biller, "2027-04-01T00:00:00+08:00")
    admin.ok(admin.post("/plan-subscriptions", {"tenant_id": acme["id"], "plan": "bundle"}), 201)
    vm = acme["id"], "i-vm1"
    send(
        admin,
        [
            event(*vm, "start", "2027-04-02T00:00:00+08:00", price_key="fl-2c4g"),
            event(*vm, "stop", "2027-04-14T12:00:00+08:00", price_key="fl-2c4g"),  # 300 h
            event(
                *vm,
                "delta",
                "2027-04-20T00:00:00+08:00",
                meter="network.egress_gb",
                quantity="175.5",
            ),
        ],
    )
    admin = at(clock, admin, NOW.isoformat())
    april = bill(admin, acct["id"], "2027-04")
    used = lines_by(april)
    assert used["bundle"]["amount"] == "100.00"  # all of April
    assert used["fl-2c4g"]["amount"] == "150.00"  # 300 h at 0.50
    assert used[""]["amount"] == "78.20"  # 175.5 GB: 8.00 + 20.00 + 50.20
    included = {
        line["meter"]: line for line in april["lines"] if line["resource_type"] == "package"
    }
    vm_off = included["instance.running"]
    assert (vm_off["amount"], vm_off["quantity"]) == ("-100.00", "-200")  # 100 h beyond: 50.00
    assert vm_off["detail"]["included"] == "200" and vm_off["detail"]["used"] == "300"
    # the 75.5 GB beyond the 100 included are priced from the first tier: 38.20
    assert included["network.egress_gb"]["amount"] == "-40.00"
    assert april["subtotal"] == "188.20"  # 100.00 + 50.00 + 38.20


def test_a_package_taken_mid_month_includes_its_share(clock: Clock, biller: Api, acme: dict):
    bundle = plan("bundle", "100.00")
    bundle["included"] = [{"meter": "instance.running", "quantity": "200"}]
    book(biller, "list", [bundle, hourly("0.50")])
    acct = account(biller, acme["id"])
    admin = at(clock, biller, "2027-04-16T09:00:00+08:00")
    admin.ok(admin.post("/plan-subscriptions", {"tenant_id": acme["id"], "plan": "bundle"}), 201)
    send(
        admin,
        [
            event(acme["id"], "i-vm1", "start", "2027-04-01T00:00:00+08:00"),
            event(acme["id"], "i-vm1", "stop", "2027-04-13T12:00:00+08:00"),  # 300 h
        ],
    )
    admin = at(clock, admin, NOW.isoformat())
    april = bill(admin, acct["id"], "2027-04")
    # 15 of 30 days: half the fee, half the hours included (100 h of the 300)
    assert lines_by(april)["bundle"]["amount"] == "50.00"
    assert april["subtotal"] == "150.00"  # 50.00 + 150.00 - 50.00


def test_plans_are_checked_and_kept_to_their_tenant(
    clock: Clock, biller: Api, acme: dict, root_id: str
):
    book(biller, "list", [plan("basic", "31.00")])
    orphan = biller.tenant(root_id, "Orphan")
    subscribe = {"tenant_id": orphan["id"], "plan": "basic"}
    refused(biller.post("/plan-subscriptions", subscribe), 422, "no-account")
    account(biller, acme["id"])
    subscribe["tenant_id"] = acme["id"]
    refused(biller.post("/plan-subscriptions", {**subscribe, "plan": "gold"}), 422, "unknown-plan")
    package = {**plan("p", "1.00", basis="hour"), "included": [{"meter": "x", "quantity": "1"}]}
    made = biller.post("/price-books", {"name": "other", "items": [package]})
    assert made.status_code == 422 and "basis is 'month' or 'day'" in made.text

    # the tenant's administrator subscribes; another tenant sees nothing of it
    boss = biller.as_user(acme["id"], "acme-admin", ["tenant-admin"])
    mine = boss.ok(boss.post("/plan-subscriptions", {"plan": "basic"}), 201)
    assert mine["tenant_id"] == acme["id"]
    other = biller.tenant(root_id, "Other")
    stranger = biller.as_user(other["id"], "other-admin", ["tenant-admin"])
    refused(stranger.get(f"/plan-subscriptions/{mine['id']}"), 404)
    refused(stranger.delete(f"/plan-subscriptions/{mine['id']}"), 404)
    assert stranger.ok(stranger.get("/plan-subscriptions"))["items"] == []
    watcher = biller.as_user(acme["id"], "acme-auditor", ["auditor"])
    assert watcher.ok(watcher.get(f"/plan-subscriptions/{mine['id']}"))["plan"] == "basic"
    refused(watcher.delete(f"/plan-subscriptions/{mine['id']}"), 403)


@pytest.mark.usefixtures("workflows")
def test_a_tenant_with_a_billing_account_or_plan_is_not_deleted(
    clock: Clock, biller: Api, acme: dict
):
    book(biller, "list", [plan("basic", "31.00")])
    account(biller, acme["id"])
    refused(biller.delete(f"/tenants/{acme['id']}"), 409, "tenant-not-empty")
    other = biller.tenant(acme["id"], "Other")
    unused = account(biller, other["id"])
    biller.ok(biller.delete(f"/billing-accounts/{unused['id']}"), 204)  # nothing billed yet
    assert biller.delete(f"/tenants/{other['id']}").status_code == 202
    team = biller.tenant(acme["id"], "Team")
    sub = biller.ok(
        biller.post("/plan-subscriptions", {"tenant_id": team["id"], "plan": "basic"}), 201
    )
    refused(biller.delete(f"/tenants/{team['id']}"), 409, "tenant-not-empty")
    biller.ok(biller.delete(f"/plan-subscriptions/{sub['id']}"), 204)
    assert biller.delete(f"/tenants/{team['id']}").status_code == 202


def test_plans_from_the_cli(biller: Api, acme: dict, run):  # the CLI signs in on the clock
    book(biller, "list", [plan("basic", "31.00"), plan("pro", "62.00")])
    account(biller, acme["id"])
    subscribe = ("plan-subscription", "create", "--tenant-id", acme["id"], "--plan")
    made = json.loads(run(*subscribe, "basic", "-o", "json"))
    assert (made["plan"], made["quantity"], made["state"]) == ("basic", 1, "active")
    change = ("plan-subscription", "set", made["id"])
    changed = json.loads(run(*change, "--plan", "pro", "--quantity", "3", "-o", "json"))
    assert (changed["plan"], changed["quantity"], changed["changes"]) == ("pro", 3, 1)
    assert "pro" in run("plan-subscription", "list", "--filter", f"tenant_id={acme['id']}")
    assert "offers no plan 'gold'" in run(*subscribe, "gold", expect=1)
    assert made["id"] in run("plan-subscription", "end", made["id"])
    ended = json.loads(run("plan-subscription", "show", made["id"], "-o", "json"))
    assert ended["state"] == "ended"


def test_plans_in_the_portal(app, biller: Api, acme: dict):
    book(biller, "list", [plan("basic", "31.00")])
    acct = account(biller, acme["id"])
    biller.user(acme["id"], "acme-boss", ["tenant-admin"])
    boss = Portal(app, "acme-boss")
    path = f"/billing/accounts/{acct['id']}"
    assert "No plans." in boss.get(path)
    done = boss.post(f"{path}/plans", plan="basic", quantity="2")
    assert "Subscribed to plan “basic” (quantity 2)" in done
    assert "offers no plan &#39;gold&#39;" in boss.post(f"{path}/plans", 422, plan="gold")
    [made] = biller.ok(biller.get("/plan-subscriptions"))["items"]
    row = row_of(boss.get(path), f'data-plan="{made["id"]}"')
    assert "<td>basic</td><td>2</td>" in row and "active" in row
    ended = boss.post(f"{path}/plans/{made['id']}/end")
    assert f"Ended {made['id']}" in ended
    assert "ended" in row_of(ended, f'data-plan="{made["id"]}"')


def package(fee: str, *included: dict) -> dict:
    return {**plan("bundle", fee), "included": list(included)}


def test_a_package_never_costs_more_and_is_split_by_tenant(clock: Clock, biller: Api, acme: dict):
    volume = {
        "meter": "network.egress_gb",
        "basis": "unit",
        "model": "volume",
        "tiers": [{"upper": "100", "unit_price": "1.00"}, {"upper": None, "unit_price": "0.50"}],
    }
    bundle = package(
        "30.00",
        {"meter": "network.egress_gb", "quantity": "60"},
        {"meter": "instance.running", "quantity": "100"},  # the default item's key: ""
    )
    book(biller, "list", [bundle, volume, hourly("0.10")])
    acct = account(biller, acme["id"])
    team = biller.tenant(acme["id"], "Team")
    admin = at(clock, biller, "2027-04-01T00:00:00+08:00")
    admin.ok(admin.post("/plan-subscriptions", {"tenant_id": acme["id"], "plan": "bundle"}), 201)
    out = {"meter": "network.egress_gb", "quantity": "150"}
    send(
        admin,
        [
            event(acme["id"], "i-vm1", "delta", "2027-04-03T00:00:00+08:00", **out),
            # 10 h in each tenant, priced by the meter's default item despite their flavor
            event(acme["id"], "i-vm1", "start", "2027-04-05T00:00:00+08:00", price_key="fl-1"),
            event(acme["id"], "i-vm1", "stop", "2027-04-05T10:00:00+08:00", price_key="fl-1"),
            event(team["id"], "i-vm2", "start", "2027-04-05T00:00:00+08:00", price_key="fl-2"),
            event(team["id"], "i-vm2", "stop", "2027-04-05T10:00:00+08:00", price_key="fl-2"),
        ],
    )
    fixed = {"kind": "fixed", "amount": "0.50", "tenant_id": team["id"]}
    admin.ok(admin.post("/discounts", {**fixed, "valid_from": "2027-04-01T00:00:00+08:00"}), 201)
    admin = at(clock, admin, NOW.isoformat())
    april = bill(admin, acct["id"], "2027-04")
    waived = {
        (line["meter"], line["tenant_id"]): line["amount"]
        for line in april["lines"]
        if line["resource_type"] == "package"
    }
    # 150 GB at volume 0.50 = 75.00; the 90 beyond 60 would list at 90.00: no surcharge
    assert ("network.egress_gb", acme["id"]) not in waived
    # all 20 h included: each tenant's 1.00 comes off its own usage, so the team's fixed
    # discount finds nothing left to take off
    assert waived == {
        ("instance.running", acme["id"]): "-1.00",
        ("instance.running", team["id"]): "-1.00",
    }
    assert [x["kind"] for x in april["lines"]].count("discount") == 0
    assert april["subtotal"] == "105.00"  # 30.00 + 75.00


def test_a_suspended_account_subscribes_to_nothing(biller: Api, acme: dict):
    book(biller, "list", [plan("basic", "31.00"), hourly("1.00")])
    account(biller, acme["id"], mode="prepaid")  # nothing in its wallet
    vm = acme["id"], "i-vm1"
    send(
        biller,
        [event(*vm, "start", "2027-05-01T00:00:00Z"), event(*vm, "stop", "2027-05-01T02:00:00Z")],
    )
    biller.ok(biller.post("/billing-runs", {}))  # charged 2.12: below zero, suspended
    refused(
        biller.post("/plan-subscriptions", {"tenant_id": acme["id"], "plan": "basic"}),
        402,
        "insufficient-balance",
    )
