"""Cost reports through the API, the portal and the CLI: Acme pays for its departments Dev
(with its team QA) and Ops; March 2027 is finalized, April a draft. Each tenant sees its
own subtree's cost, and nothing of its siblings'."""

import csv
import io
import json
from decimal import Decimal

import pytest

from tests.billing.conftest import account, bill, book, event, send
from tests.billing.test_examples import hourly
from tests.network.test_portal import Portal
from tests.orders.test_portal import row_of
from tests.support.api import ADMIN_PASSWORD, Api

EGRESS = {"meter": "network.egress_gb", "basis": "unit", "unit_price": "0.80"}
SPRING = {"from": "2027-03", "to": "2027-04"}


def running(tenant_id: str, vm: str, key: str, start: str, stop: str) -> list[dict]:
    return [
        event(tenant_id, vm, "start", start, price_key=key),
        event(tenant_id, vm, "stop", stop, price_key=key),
    ]


def egress(tenant_id: str, vm: str, at: str, gb: str) -> dict:
    return event(tenant_id, vm, "delta", at, meter="network.egress_gb", quantity=gb)


@pytest.fixture
def acme(biller: Api, root_id: str) -> dict:
    """Acme's tenants, and its invoices: March 60.00 (finalized), April 45.00 (a draft)."""
    acme = biller.tenant(root_id, "Acme")
    dev, ops = biller.tenant(acme["id"], "Dev"), biller.tenant(acme["id"], "Ops")
    qa = biller.tenant(dev["id"], "QA")
    book(biller, "list", [hourly("0.50", "fl-2c4g"), hourly("1.00", "fl-4c8g"), EGRESS])
    acct = account(biller, acme["id"])
    loyalty = {"kind": "fixed", "amount": "5.00", "valid_from": "2027-02-28T16:00:00Z"}
    biller.ok(biller.post("/discounts", {**loyalty, "tenant_id": acme["id"]}), 201)
    send(
        biller,
        [
            *running(dev["id"], "i-dev1", "fl-2c4g", "2027-03-02T00:00Z", "2027-03-06T04:00Z"),
            egress(dev["id"], "i-dev1", "2027-03-10T00:00:00Z", "5"),  # 50.00 + 4.00
            *running(qa["id"], "i-qa1", "fl-2c4g", "2027-03-12T00:00Z", "2027-03-12T02:00Z"),
            *running(ops["id"], "i-ops1", "fl-4c8g", "2027-03-20T00:00Z", "2027-03-20T10:00Z"),
            *running(dev["id"], "i-dev1", "fl-2c4g", "2027-04-02T00:00Z", "2027-04-02T20:00Z"),
            *running(ops["id"], "i-ops1", "fl-4c8g", "2027-04-05T00:00Z", "2027-04-06T06:00Z"),
            egress(ops["id"], "i-ops1", "2027-04-07T00:00:00Z", "10"),  # 30.00 + 8.00
            *running(acme["id"], "i-acme", "fl-2c4g", "2027-04-10T00:00Z", "2027-04-10T04:00Z"),
        ],
    )
    march = bill(biller, acct["id"], "2027-03", finalize=True)
    april = bill(biller, acct["id"], "2027-04")
    assert (march["state"], march["subtotal"]) == ("finalized", "60.00")
    assert (april["state"], april["subtotal"]) == ("draft", "45.00")
    return {"acme": acme, "dev": dev, "ops": ops, "qa": qa}


@pytest.fixture
def admin_portal(app, biller: Api) -> Portal:
    return Portal(app, "admin", ADMIN_PASSWORD)  # logged in on the moved clock


def report(api: Api, status: int = 200, **params: str) -> list[dict]:
    answer = api.ok(api.get("/cost-reports", params={**SPRING, **params}), status)
    return answer if status != 200 else answer["items"]


def amounts(items: list[dict]) -> list[tuple[str, str, str]]:
    return [(item["period"], item["label"], item["amount"]) for item in items]


def test_cost_by_subtree_adds_up_to_the_invoices(biller: Api, acme: dict) -> None:
    by_subtree = report(biller, group_by="subtree", tenant_id=acme["acme"]["id"])
    assert amounts(by_subtree) == [
        ("2027-03", "Dev", "55.00"),  # QA's 1.00 with Dev's
        ("2027-03", "Ops", "10.00"),
        ("2027-03", "Acme", "-5.00"),  # its own VM and the discount
        ("2027-04", "Ops", "38.00"),
        ("2027-04", "Dev", "10.00"),
        ("2027-04", "Acme", "-3.00"),
    ]
    assert {item["currency"] for item in by_subtree} == {"CNY"}
    assert by_subtree[0]["group"] == by_subtree[0]["tenant_id"] == acme["dev"]["id"]
    for period, subtotal in (("2027-03", "60.00"), ("2027-04", "45.00")):
        total = sum(Decimal(i["amount"]) for i in by_subtree if i["period"] == period)
        assert total == Decimal(subtotal)

    assert amounts(report(biller)) == [("2027-03", "Acme", "60.00"), ("2027-04", "Acme", "45.00")]
    by_tenant = report(biller, group_by="tenant", **{"from": "2027-03", "to": "2027-03"})
    assert amounts(by_tenant) == [
        ("2027-03", "Dev", "54.00"),
        ("2027-03", "Ops", "10.00"),
        ("2027-03", "QA", "1.00"),
        ("2027-03", "Acme", "-5.00"),
    ]
    assert report(biller, group_by="project", **{"from": "2027-03", "to": "2027-03"}) == by_tenant
    assert report(biller, **{"from": "2027-05", "to": "2027-05"}) == []  # nothing used in May


def test_cost_by_product_and_by_resource(biller: Api, acme: dict) -> None:
    by_product = report(biller, group_by="product")
    assert [(i["period"], i["group"], i["label"], i["amount"]) for i in by_product] == [
        ("2027-03", "instance.running/fl-2c4g", "instance.running fl-2c4g", "51.00"),
        ("2027-03", "instance.running/fl-4c8g", "instance.running fl-4c8g", "10.00"),
        ("2027-03", "network.egress_gb", "network.egress_gb", "4.00"),
        ("2027-03", "discounts", "discounts and credits", "-5.00"),
        ("2027-04", "instance.running/fl-4c8g", "instance.running fl-4c8g", "30.00"),
        ("2027-04", "instance.running/fl-2c4g", "instance.running fl-2c4g", "12.00"),
        ("2027-04", "network.egress_gb", "network.egress_gb", "8.00"),
        ("2027-04", "discounts", "discounts and credits", "-5.00"),
    ]
    assert (by_product[0]["meter"], by_product[0]["price_key"]) == ("instance.running", "fl-2c4g")
    assert "tenant_id" not in by_product[0]

    by_resource = report(biller, group_by="resource", **{"from": "2027-04", "to": "2027-04"})
    assert [(i["group"], i["amount"]) for i in by_resource] == [
        ("instance/i-ops1", "38.00"),
        ("instance/i-dev1", "10.00"),
        ("instance/i-acme", "2.00"),
        ("discounts", "-5.00"),
    ]
    assert by_resource[0]["resource_id"] == "i-ops1"


def test_the_report_as_csv(biller: Api, acme: dict) -> None:
    answer = biller.get(
        "/cost-reports", params={**SPRING, "group_by": "product"}, headers={"Accept": "text/csv"}
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    disposition = 'attachment; filename="cost-by-product-2027-03-2027-04.csv"'
    assert answer.headers["content-disposition"] == disposition
    assert answer.text.splitlines()[0] == "period,currency,group,label,amount"
    columns = ("period", "currency", "group", "label", "amount")
    expected = [{c: i[c] for c in columns} for i in report(biller, group_by="product")]
    assert list(csv.DictReader(io.StringIO(answer.text))) == expected

    biller.ok(biller.patch(f"/tenants/{acme['qa']['id']}", {"name": "=HYPERLINK(1)"}))
    tenants = {**SPRING, "group_by": "tenant"}
    by_tenant = biller.get("/cost-reports", params=tenants, headers={"Accept": "text/csv"})
    assert f"2027-03,CNY,{acme['qa']['id']},'=HYPERLINK(1),1.00" in by_tenant.text  # not a formula


def test_a_department_sees_its_own_cost_only(biller: Api, root_id: str, acme: dict) -> None:
    dev = biller.as_user(acme["dev"]["id"], "dev-boss", ["tenant-admin"])
    assert amounts(report(dev)) == [
        ("2027-03", "Dev", "54.00"),  # its own lines under its own name
        ("2027-03", "QA", "1.00"),
        ("2027-04", "Dev", "10.00"),
    ]
    assert {i["label"] for i in report(dev, group_by="tenant")} == {"Dev", "QA"}
    assert {i["group"] for i in report(dev, group_by="resource")} == {
        "instance/i-dev1",
        "instance/i-qa1",
    }
    for hidden in ("ops", "acme"):
        problem = report(dev, 404, tenant_id=acme[hidden]["id"])
        assert problem["code"] == "not-found"
    assert amounts(report(dev, tenant_id=acme["qa"]["id"])) == [("2027-03", "QA", "1.00")]

    globex = biller.tenant(root_id, "Globex")
    stranger = biller.as_user(globex["id"], "globex-boss", ["tenant-admin"])
    assert report(stranger) == [] and report(stranger, group_by="product") == []
    report(stranger, 404, tenant_id=acme["acme"]["id"])
    member = biller.as_user(acme["acme"]["id"], "acme-member", ["member"])  # no billing:read
    assert report(member, group_by="tenant") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"group_by": "flavor"}, "bad-group-by"),
        ({"from": "2027-13"}, "bad-period"),
        ({"to": "March"}, "bad-period"),
        ({"from": "2027-04", "to": "2027-03"}, "bad-period-range"),
        ({"from": "2020-01", "to": "2027-04"}, "bad-period-range"),
        ({"currency": "XYZ"}, "unknown-currency"),
    ],
)
def test_a_bad_report_is_refused(biller: Api, params: dict, code: str) -> None:
    assert report(biller, 422, **params)["code"] == code


def test_the_reports_page(app, admin_portal: Portal, biller: Api, acme: dict) -> None:
    billing = admin_portal.get("/billing")
    assert '<p class="actions"><a href="/billing/reports">Cost reports</a>' in billing
    query = f"group_by=subtree&tenant_id={acme['acme']['id']}&from=2027-03&to=2027-04"
    page = admin_portal.get(f"/billing/reports?{query}")
    assert '<option value="subtree" selected>' in page and 'value="2027-03"' in page
    march = page.split('<g data-period="2027-03">')[1].split("</g>")[0]
    assert march.count("<rect") == 2  # Dev and Ops; Acme's own cost is below zero
    assert "<title>2027-03: 65.00 CNY</title>" in march  # 120 px: the highest month
    dev = 'y="18" width="36" height="102" fill="#c8102e" data-total="55.00" data-group="Dev"'
    ops = 'y="0" width="36" height="18" fill="#1f6f8b" data-total="10.00" data-group="Ops"'
    assert dev in march and ops in march  # stacked, Dev (the most) at the bottom
    assert 'data-legend="Ops"' in page and '<li data-spender="Ops">Ops: 38.00</li>' in page
    dev_row = row_of(page, f'data-row="2027-03 {acme["dev"]["id"]}"')
    assert ">Dev</a>" in dev_row and 'data-amount="55.00"' in dev_row
    assert f"tenant_id={acme['dev']['id']}" in dev_row  # drills down into Dev's subtree

    link = page.split('<a href="/billing/reports.csv?')[1].split('"')[0].replace("&amp;", "&")
    download = admin_portal.client.get(f"/billing/reports.csv?{link}")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["period"], r["label"], r["amount"]) for r in rows][:2] == [
        ("2027-03", "Dev", "55.00"),
        ("2027-03", "Ops", "10.00"),
    ]

    default = admin_portal.get("/billing/reports")
    assert 'value="2026-12"' in default and 'value="2027-05"' in default  # six months to date
    assert 'data-period="2026-12"' in default and 'data-period="2026-11"' not in default
    assert 'data-row="2027-04 ' in default and "45.00" in default

    biller.user(acme["dev"]["id"], "dev-boss", ["tenant-admin"])
    mine = Portal(app, "dev-boss").get("/billing/reports?group_by=tenant&from=2027-03&to=2027-04")
    assert 'data-group="Dev"' in mine and 'data-group="QA"' in mine
    assert "Ops" not in mine and "Acme" not in mine

    assert 'role="alert">group_by is one of' in admin_portal.get("/billing/reports?group_by=x")
    refused = admin_portal.client.get("/billing/reports?to=2027", headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "&#39;2027&#39; is not a month" in refused.text


def test_the_cli_prints_a_report(biller: Api, acme: dict, run) -> None:
    args = ("cost", "report", "--group-by", "product", "--from", "2027-03", "--to", "2027-04")
    assert json.loads(run(*args, "-o", "json")) == report(biller, group_by="product")
    table = run(*args)
    assert "instance.running fl-2c4g" in table and "51.00" in table
    assert run(*args, "--csv").splitlines()[0] == "period,currency,group,label,amount"
    subtree = run("cost", "report", "--tenant-id", acme["acme"]["id"], "--csv", *args[4:])
    assert "2027-03,CNY," + acme["dev"]["id"] + ",Dev,55.00" in subtree
    run("cost", "report", "--group-by", "flavor", expect=1)
