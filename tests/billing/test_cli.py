"""The billing CLI against a real server: prices from a YAML file, usage from NDJSON, October
2026 (over, its grace period too) rated, its invoice shown and downloaded."""

import json

from tests.support.api import Api
from yunguan.billing import cli as billing_cli

PRICES = """\
- meter: instance.running
  price_key: fl-2c4g
  unit_price: 0.50
  description: 2 vCPU, 4 GB
- meter: network.egress_gb
  model: graduated
  basis: unit
  tiers:
    - {upper: 10, unit_price: 0.80}
    - {upper: null, unit_price: 0.50}
"""


def _json(output: str):
    return json.loads(output)


def _usage(tenant_id: str) -> list[dict]:
    """Ten hours of a VM at 0.50/h (5.00) and 12.5 GB out (10 * 0.80 + 2.5 * 0.50 = 9.25)."""
    common = {"source": "test", "tenant_id": tenant_id, "resource_type": "instance"}
    vm = {**common, "resource_id": "i-vm1", "meter": "instance.running", "price_key": "fl-2c4g"}
    return [
        {**vm, "event_id": "ev-1", "action": "start", "occurred_at": "2026-10-05T00:00:00+08:00"},
        {**vm, "event_id": "ev-2", "action": "stop", "occurred_at": "2026-10-05T10:00:00+08:00"},
        {
            **common,
            "event_id": "ev-3",
            "resource_id": "i-vm1",
            "meter": "network.egress_gb",
            "action": "delta",
            "quantity": 12.5,
            "occurred_at": "2026-10-06T00:00:00Z",
        },
    ]


def _ndjson(events: list[dict]) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


def test_prices_usage_and_a_month_billed(run, admin: Api, root_id: str, tmp_path, monkeypatch):
    tenant = admin.tenant(root_id, "Acme")
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    create = ["price-book", "create", "--name", "list", "--currency", "CNY", "--file", str(prices)]
    draft = _json(run(*create, "-o", "json"))
    assert (draft["state"], draft["version"]) == ("draft", 1)
    assert [i["meter"] for i in draft["items"]] == ["instance.running", "network.egress_gb"]
    book = _json(
        run(
            "price-book",
            "publish",
            draft["id"],
            "--effective-from",
            "2020-01-01T00:00:00Z",
            "-o",
            "json",
        )
    )
    assert book["state"] == "published"
    table = run("price-book", "show", book["id"])
    assert "fl-2c4g" in table and "∞: 0.50" in table
    run("price-book", "delete", book["id"], expect=1)

    account = _json(
        run(
            "billing-account",
            "create",
            "--tenant-id",
            tenant["id"],
            "--price-book",
            "list",
            "--tax-rate",
            "0.06",
            "-o",
            "json",
        )
    )
    changed = _json(
        run("billing-account", "set", account["id"], "--grace-hours", "24", "-o", "json")
    )
    assert (changed["price_book"], changed["grace_hours"]) == ("list", 24)

    monkeypatch.setattr(billing_cli, "BATCH", 2)  # three events: two batches
    usage = tmp_path / "usage.ndjson"
    usage.write_text(_ndjson(_usage(tenant["id"])) + "\n")
    first = _json(run("usage-event", "import", str(usage), "-o", "json"))
    assert first == {"received": 3, "inserted": 3, "duplicates": 0, "quarantined": 0}
    again = _json(run("usage-event", "import", "-", "-o", "json", stdin=usage.read_text()))
    assert again == {"received": 3, "inserted": 0, "duplicates": 3, "quarantined": 0}
    differing = {**_usage(tenant["id"])[2], "quantity": "13"}
    copy = _json(run("usage-event", "import", "-", "-o", "json", stdin=_ndjson([differing])))
    assert copy["quarantined"] == 1
    [held] = _json(run("usage-event", "quarantine", "-o", "json"))
    assert held["event_id"] == "ev-3"
    events = _json(run("usage-event", "list", "--meter", "instance.running", "-o", "json"))
    assert sorted(e["action"] for e in events) == ["start", "stop"]  # listed by id, not time
    [interval] = _json(run("usage-event", "intervals", "i-vm1", "-o", "json"))
    assert interval["started_at"].startswith("2026-10-04T16:00:00")

    counts = _json(run("billing", "run", "--period", "2026-10", "-o", "json"))
    assert counts == {"rated": 1, "finalized": 1, "corrected": 0, "operations": 0}
    [listed] = _json(run("invoice", "list", "--period", "2026-10", "-o", "json"))
    invoice = _json(run("invoice", "show", listed["id"], "-o", "json"))
    assert invoice["state"] == "finalized"
    amounts = {line["meter"]: line["amount"] for line in invoice["lines"]}
    assert amounts == {"instance.running": "5.00", "network.egress_gb": "9.25"}
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("14.25", "0.86", "15.11")
    assert "i-vm1" in run("invoice", "show", listed["id"])
    assert "15.11" in run("invoice", "download", listed["id"])
    csv = tmp_path / "invoice.csv"
    run("invoice", "download", listed["id"], "--output-file", str(csv))
    assert csv.read_text().splitlines()[-1].endswith("15.11")
    note = _json(
        run(
            "invoice",
            "credit",
            listed["id"],
            "--amount",
            "1.00",
            "--reason",
            "outage",
            "-o",
            "json",
        )
    )
    assert (note["kind"], note["total"]) == ("credit_note", "-1.06")
