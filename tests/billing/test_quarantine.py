"""A quarantined copy is settled by an administrator: discarded, or accepted in place of the
recorded event, after which a finalized month is corrected like any late usage. From the
API, the CLI and the portal."""

import json
from decimal import Decimal

from tests.billing.conftest import account, bill, book, event, send
from tests.network.test_portal import Portal
from tests.orders.test_portal import row_of
from tests.support.api import ADMIN_PASSWORD, Api

EGRESS = {"meter": "network.egress_gb", "basis": "unit", "unit_price": "1.00"}


def egress(tenant_id: str, gigabytes: str) -> dict:
    return event(
        tenant_id,
        "i-vm1",
        "delta",
        "2027-03-10T00:00:00Z",
        meter="network.egress_gb",
        quantity=gigabytes,
        event_id="egress-0310",
    )


def held(admin: Api, **filters) -> list[dict]:
    return admin.ok(admin.get("/usage-quarantine", params=filters))["items"]


def test_an_accepted_copy_replaces_the_event_and_corrects_a_finalized_month(
    biller: Api, root_id: str
):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [EGRESS])
    acct = account(biller, tenant["id"])
    send(biller, [egress(tenant["id"], "10")])
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    assert march["subtotal"] == "10.00"
    assert send(biller, [egress(tenant["id"], "12")])["quarantined"] == 1
    assert send(biller, [egress(tenant["id"], "11")])["quarantined"] == 1
    twelve, eleven = sorted(held(biller), key=lambda h: h["payload"]["quantity"], reverse=True)

    act = f"/usage-quarantine/{twelve['id']}/actions"
    accepted = biller.ok(biller.post(act, {"action": "accept"}))
    assert (accepted["state"], accepted["resolved_at"] is not None) == ("accepted", True)
    again = biller.post(act, {"action": "discard"})
    assert again.status_code == 409 and again.json()["code"] == "quarantine-resolved"
    [recorded] = biller.ok(biller.get("/usage-events", params={"meter": "network.egress_gb"}))[
        "items"
    ]
    assert (recorded["event_id"], Decimal(recorded["quantity"])) == ("egress-0310", 12)

    biller.ok(biller.post("/billing-runs", {}))  # the hourly run finds the late usage
    may = biller.ok(biller.get("/invoices", params={"account_id": acct["id"], "period": "2027-05"}))
    [adjustment] = biller.ok(biller.get(f"/invoices/{may['items'][0]['id']}"))["lines"]
    assert (adjustment["kind"], adjustment["amount"], adjustment["corrects_invoice_id"]) == (
        "adjustment",
        "2.00",
        march["id"],
    )
    discarded = biller.ok(
        biller.post(f"/usage-quarantine/{eleven['id']}/actions", {"action": "discard"})
    )
    assert discarded["state"] == "discarded"
    assert held(biller, state="held") == []
    bad = biller.post(f"/usage-quarantine/{eleven['id']}/actions", {"action": "keep"})
    assert bad.status_code == 422


def test_quarantine_from_the_cli_and_the_portal(app, biller: Api, root_id: str, run):
    tenant = biller.tenant(root_id, "Acme")
    send(biller, [egress(tenant["id"], "10")])
    send(biller, [egress(tenant["id"], "12"), {**egress(tenant["id"], "13"), "source": "test"}])
    [first, second] = held(biller)
    shown = json.loads(run("usage-event", "discard", first["id"], "-o", "json"))
    assert shown["state"] == "discarded"
    assert "quarantine-resolved" in run("usage-event", "accept", first["id"], expect=1)
    assert second["id"] in run("usage-event", "quarantine", "--state", "held")

    portal = Portal(app, "admin", ADMIN_PASSWORD)
    page = portal.get("/admin/billing/quarantine")
    assert "Accept</button>" in row_of(page, f'data-held="{second["id"]}"')
    done = portal.post(f"/admin/billing/quarantine/{second['id']}/accept")
    assert "Accepted the copy of egress-0310." in done
    assert "Accept</button>" not in row_of(done, f'data-held="{second["id"]}"')
