"""The issue's worked examples (CNY, Asia/Shanghai, VAT 6%), end to end through the API:
usage in, a month rated, the invoice's lines and totals out."""

from datetime import UTC, datetime, timedelta

from tests.billing.conftest import account, amounts, bill, book, event, send
from tests.support.api import Api


def hourly(price: str, key: str = "") -> dict:
    return {"meter": "instance.running", "price_key": key, "basis": "hour", "unit_price": price}


def test_ten_runs_of_90_seconds_are_one_line_of_900_seconds(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [hourly("1.00")])
    acct = account(biller, tenant["id"])
    start = datetime(2027, 3, 5, 2, 0, tzinfo=UTC)
    runs = []
    for n in range(10):
        begin = start + timedelta(hours=n)
        runs += [
            event(tenant["id"], "i-vm1", "start", begin.isoformat()),
            event(tenant["id"], "i-vm1", "stop", (begin + timedelta(seconds=90)).isoformat()),
        ]
    send(biller, runs)
    invoice = bill(biller, acct["id"], "2027-03")
    [line] = invoice["lines"]
    assert (line["seconds"], line["starts"], line["amount"]) == (900, 10, "0.25")  # not 0.30
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("0.25", "0.02", "0.27")


def test_a_resize_mid_month_is_two_lines_of_558(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [hourly("0.50", "fl-2c4g"), hourly("1.00", "fl-4c8g")])
    acct = account(biller, tenant["id"])
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [  # local times: 03-01 00:00, 03-16 12:00 (+08:00); it still runs in May
            event(*vm, "start", "2027-03-01T00:00:00+08:00", price_key="fl-2c4g"),
            event(*vm, "stop", "2027-03-16T12:00:00+08:00", price_key="fl-2c4g"),
            event(*vm, "start", "2027-03-16T12:00:00+08:00", price_key="fl-4c8g"),
        ],
    )
    invoice = bill(biller, acct["id"], "2027-03")
    assert [(x["price_key"], x["seconds"], x["amount"]) for x in invoice["lines"]] == [
        ("fl-2c4g", 1_339_200, "186.00"),
        ("fl-4c8g", 1_339_200, "372.00"),
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("558.00", "33.48", "591.48")
    assert invoice["period_start"].startswith("2027-02-28T16:00:00")


def test_egress_priced_graduated_and_as_a_volume(biller: Api, root_id: str):
    tiers = [
        {"upper": "10", "unit_price": "0.80"},
        {"upper": "50", "unit_price": "0.50"},
        {"upper": None, "unit_price": "0.40"},
    ]
    bills = {}
    for model in ("graduated", "volume"):
        tenant = biller.tenant(root_id, f"Acme {model}")
        egress = {"meter": "network.egress_gb", "basis": "unit", "model": model, "tiers": tiers}
        book(biller, model, [egress])
        acct = account(biller, tenant["id"], price_book=model)
        used = [("30", "i-web1"), ("40", "i-web2"), ("5.5", "i-web1")]  # 75.5 GB in March
        send(
            biller,
            [
                event(
                    tenant["id"],
                    vm,
                    "delta",
                    f"2027-03-{10 + n}T00:00:00Z",
                    meter="network.egress_gb",
                    quantity=gb,
                )
                for n, (gb, vm) in enumerate(used)
            ],
        )
        bills[model] = bill(biller, acct["id"], "2027-03")
    for model, expected in (("graduated", "38.20"), ("volume", "30.20")):
        [line] = bills[model]["lines"]  # tiers count the account's whole month, not a resource's
        assert (line["quantity"], line["amount"]) == ("75.5", expected)
        assert line["detail"]["resources"] == {"i-web1": "35.5", "i-web2": "40"}


def test_a_run_across_the_local_month_end_is_billed_in_both_months(biller: Api, root_id: str):
    tenant = biller.tenant(root_id, "Acme")
    book(biller, "list", [hourly("1.00")])
    acct = account(biller, tenant["id"])
    vm = tenant["id"], "i-vm1"
    send(
        biller,
        [event(*vm, "start", "2027-03-31T15:00:00Z"), event(*vm, "stop", "2027-03-31T17:00:00Z")],
    )
    assert amounts(bill(biller, acct["id"], "2027-03")) == ["1.00"]  # 23:00-24:00 local
    assert amounts(bill(biller, acct["id"], "2027-04")) == ["1.00"]  # 00:00-01:00 local
