"""The order pages of the portal: the catalog and its generated order forms, one's orders
with their approvals, the approvals inbox, and one's services with their day-2 actions."""

from datetime import datetime
from decimal import Decimal

import pytest

from tests.catalog.conftest import make_template, publish
from tests.compute.test_portal import poll
from tests.network.test_portal import Portal
from tests.orders.conftest import fulfilled, order
from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.quotas import set_limit
from tests.test_portal_forms import ORIGIN
from yunguan.core.clock import add_months

pytestmark = pytest.mark.usefixtures("workflows")
HTMX = ORIGIN | {"hx-request": "true"}


@pytest.fixture
def options(admin: Api, root_id: str, place: dict) -> dict:
    """An item whose template has a parameter of every type."""
    flavor_id = place["flavor"]["id"]
    parameters = [
        {"name": "size", "type": "choice", "label": "Size", "choices": [flavor_id, "flv-none"]},
        {"name": "count", "type": "integer", "minimum": 1, "maximum": 3, "default": 1},
        {"name": "hostname", "type": "string", "pattern": "[a-z][a-z0-9-]*", "max_length": 20},
        {"name": "weight", "type": "number", "minimum": 0.5, "maximum": 2.5, "default": 1.5},
        {"name": "backup", "type": "boolean", "default": True},
    ]
    parameters[0] |= {"default": flavor_id, "choice_labels": {flavor_id: "Small (2 vCPU)"}}
    parameters[2] |= {"required": True}
    spec = {
        "flavor_id": {"param": "size"},
        "image_id": place["image"]["id"],
        "count": {"param": "count"},
    }
    template = make_template(admin, "options", parameters=parameters, spec=spec)
    reviewer = admin.as_user(root_id, "reviewer", ["platform-admin"])
    version = publish(admin, reviewer, template["id"])
    category = admin.ok(admin.post("/categories", {"name": "Machines"}), 201)
    offer = {
        "name": "Tuned VM",
        "category_id": category["id"],
        "template_version_id": version["id"],
        "price_monthly": "12.5",
    }
    return admin.ok(admin.post("/catalog-items", offer), 201)


@pytest.fixture
def portal(app, member: Api) -> Portal:
    return Portal(app, "dev")


def field(page: str, name: str) -> str:
    """A parameter's field in an order form, its whitespace collapsed."""
    return " ".join(page.split(f'data-parameter="{name}"')[1].split("</div>")[0].split())


def row_of(page: str, marker: str) -> str:
    return page.split(marker)[1].split("</tr>")[0]


FORM = {"name": "tuned", "values.count": "2", "values.hostname": "web-1", "values.weight": "1.25"}


def test_the_order_form_has_a_field_for_each_parameter(
    portal: Portal, options: dict, place: dict
) -> None:
    catalog = portal.get("/catalog")
    assert 'href="/catalog"' in catalog and 'href="/orders"' in catalog
    assert 'href="/services"' in catalog and 'href="/approvals"' not in catalog
    card = catalog.split(f'data-item="{options["id"]}"')[1]
    assert "Machines" in catalog and "Tuned VM" in card and "12.50" in card
    assert f'href="/catalog/{options["id"]}"' in card

    form = portal.get(f"/catalog/{options['id']}")
    size = field(form, "size")
    assert '<select name="values.size"' in size and "Size" in size
    assert f'<option value="{place["flavor"]["id"]}" selected>Small (2 vCPU)</option>' in size
    assert '<option value="flv-none" >flv-none</option>' in size  # no label: the choice
    count = field(form, "count")
    assert 'type="number" name="values.count" value="1" step="1" min="1" max="3"' in count
    hostname = field(form, "hostname")
    assert 'type="text" name="values.hostname" value="" maxlength="20"' in hostname
    assert 'pattern="[a-z][a-z0-9-]*" required' in hostname and 'title="required"' in hostname
    weight = field(form, "weight")
    assert 'value="1.5" step="any" min="0.5" max="2.5"' in weight
    backup = field(form, "backup")
    assert 'type="checkbox" role="switch" name="values.backup" value="true" checked' in backup
    assert ">pay-as-you-go</option>" in form and ">12 months</option>" in form
    assert 'name="auto_renew"' in form


def test_faults_are_shown_next_to_their_fields_and_the_input_is_kept(
    admin: Api, portal: Portal, options: dict, team: dict
) -> None:
    typed = FORM | {"values.count": "7", "values.hostname": "Web 1", "values.weight": "heavy"}
    refused = portal.post(f"/catalog/{options['id']}", 422, **typed)
    assert '<p class="error" role="alert">' in refused
    count = field(refused, "count")
    assert 'value="7"' in count and 'aria-invalid="true"' in count
    assert 'data-fault="count">must be at most 3</small>' in count
    hostname = field(refused, "hostname")
    assert 'value="Web 1"' in hostname and "must match [a-z][a-z0-9-]*" in hostname
    assert 'value="heavy"' in field(refused, "weight")
    assert "must be a number" in field(refused, "weight")
    assert "checked" not in field(refused, "backup")  # unchecked, as it was posted
    assert 'name="name" required maxlength="64" value="tuned"' in refused

    set_limit(admin, team["id"], "vcpus", cap=4)
    over = portal.post(f"/catalog/{options['id']}", 409, **FORM | {"values.count": "3"})
    assert '<p class="error" role="alert">vcpus +6: tenant' in over and "of its cap 4" in over
    assert 'value="3"' in field(over, "count")
    assert admin.ok(admin.get("/orders"))["items"] == []


def test_ordering_places_the_order_and_follows_its_fulfilment(
    member: Api, portal: Portal, options: dict, place: dict
) -> None:
    answer = portal.client.post(
        f"/catalog/{options['id']}",
        data=FORM | {"term_months": "3", "auto_renew": "true"},
        headers=HTMX,
    )
    [placed] = member.ok(member.get("/orders"))["items"]
    assert answer.status_code == 200 and answer.headers["hx-redirect"] == f"/orders/{placed['id']}"
    assert placed["values"] == {
        "size": place["flavor"]["id"],
        "count": 2,
        "hostname": "web-1",
        "weight": 1.25,
        "backup": False,
    }
    assert (placed["term_months"], placed["auto_renew"]) == (3, True)
    assert Decimal(placed["cost"]) == 3 * Decimal("12.5")

    page = portal.get(f"/orders/{placed['id']}")
    assert "No approval was needed." in page and ">Approve<" not in page
    assert ">37.50</td>" in page and "3 months, renewed automatically" in page
    done = poll(portal, f"/orders/{placed['id']}/state", 'data-state="completed"')
    assert "hx-trigger" not in done  # settled: no more polling
    assert 'id="order-timeline" hx-swap-oob="true"' in done and 'data-event="completed"' in done
    service_id = fulfilled(member, placed)["service_instance_id"]
    assert f'href="/services/{service_id}"' in done

    plain = portal.client.post(
        f"/catalog/{options['id']}",
        data=FORM | {"name": "plain"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert plain.status_code == 303 and plain.headers["location"].startswith("/orders/ord-")
    second = fulfilled(member, member.ok(member.get(plain.headers["location"])))
    listed = portal.get("/orders")
    assert row_of(listed, f'data-order="{placed["id"]}"').count("Tuned VM") == 1
    assert listed.index(second["id"]) < listed.index(placed["id"])  # newest first


def test_an_approver_decides_from_the_inbox(
    app, admin: Api, member: Api, lead: Api, team: dict, item: dict, portal: Portal
) -> None:
    stages = [{"name": "team lead", "approvers": [lead.me["id"]]}]
    policy = {"tenant_id": team["id"], "name": "team", "stages": stages}
    admin.ok(admin.post("/approval-policies", policy), 201)
    for name in ("web", "spare"):
        portal.post(f"/catalog/{item['id']}", name=name, term_months="1")
    placed = {o["name"]: o for o in member.ok(member.get("/orders"))["items"]}
    web, spare = placed["web"], placed["spare"]

    mine = portal.get(f"/orders/{web['id']}")
    assert 'data-state="pending-approval"' in mine and "team lead" in mine
    assert ">Cancel order<" in mine and ">Approve<" not in mine and "Delegate" not in mine
    cancelled = portal.post(f"/orders/{spare['id']}/actions", action="cancel")
    assert "Cancelled “spare”." in cancelled and 'data-state="cancelled"' in cancelled

    approver = Portal(app, "lead")
    inbox = approver.get("/approvals")
    assert 'href="/approvals"' in inbox
    row = row_of(inbox, f'data-order="{web["id"]}"')
    assert "web" in row and "dev" in row and "300.00" in row and "team lead" in row
    assert spare["id"] not in inbox  # cancelled: withdrawn from the inbox
    detail = approver.get(f"/orders/{web['id']}")
    assert ">Approve<" in detail and ">Reject<" in detail and "Hand your decision to" in detail

    decided = approver.post(
        f"/orders/{web['id']}/actions", action="approve", comment="fine", view="inbox"
    )
    assert "Approved “web”. Its fulfilment has started." in decided
    assert "Nothing waits for your decision." in decided
    approved = member.ok(member.get(f"/orders/{web['id']}"))
    assert approved["state"] == "fulfilling" and approved["tasks"][0]["comment"] == "fine"
    fulfilled(member, approved)
    late = approver.post(f"/orders/{web['id']}/actions", 409, action="reject", view="inbox")
    assert f"order {web['id']} is completed" in late


def test_a_members_services_page_offers_the_day_two_actions(
    app, admin: Api, member: Api, item: dict, portal: Portal
) -> None:
    done = fulfilled(member, order(member, item, term_months=1))
    service = member.ok(member.get(f"/service-instances/{done['service_instance_id']}"))
    expires = datetime.fromisoformat(service["subscription"]["expires_at"])
    path = f"/services/{service['id']}"

    listed = row_of(portal.get("/services"), f'data-service="{service["id"]}"')
    assert 'data-state="active"' in listed and "Linux VM" in listed
    assert f'data-expires="{expires.isoformat()}"' in listed and ">off<" in listed
    page = portal.get(path)
    for button in (">Start<", ">Stop<", ">Turn auto-renew on<", ">Unsubscribe<", ">Renew<"):
        assert button in page, button
    assert "Order the resize" in page and ">Reclaim<" not in page
    assert f'href="/instances/{service["resources"][0]["id"]}"' in page
    assert ">Reclaim<" in Portal(app, "admin", ADMIN_PASSWORD).get(path)

    renewed = portal.post(f"{path}/actions", action="renew", months="2")
    later = add_months(expires, 2)
    assert f"Renewed “web” until {later:%Y-%m-%d %H:%M} UTC." in renewed
    assert "Auto-renew is on." in portal.post(
        f"{path}/actions", action="set-auto-renew", auto_renew="true"
    )
    subscription = member.ok(member.get(path.replace("/services", "/service-instances")))
    assert subscription["subscription"]["auto_renew"] is True
    assert datetime.fromisoformat(subscription["subscription"]["expires_at"]) == later
    refused = portal.post(f"{path}/actions", 422, action="renew", months="0")
    assert "months" in refused and 'id="service-panel"' in refused

    bigger = admin.ok(
        admin.post("/flavors", {"name": "s4.large", "vcpus": 4, "memory_mb": 4096}), 201
    )
    resize = portal.client.post(
        f"{path}/change-orders", data={"flavor_id": bigger["id"]}, headers=HTMX
    )
    changes = member.ok(member.get("/orders", params={"service_instance_id": service["id"]}))
    change = changes["items"][0]  # the newest
    assert resize.headers["hx-redirect"] == f"/orders/{change['id']}"
    assert change["kind"] == "change"
    assert "resize to s4.large" in portal.get(resize.headers["hx-redirect"])
    assert fulfilled(member, change)["state"] == "completed"


def test_another_tenants_orders_and_services_are_not_found(
    app, admin: Api, member: Api, item: dict, root_id: str
) -> None:
    done = fulfilled(member, order(member, item))
    admin.as_user(admin.tenant(root_id, "Globex")["id"], "globex", ["tenant-admin"])
    theirs = Portal(app, "globex")
    service_id = done["service_instance_id"]
    assert done["id"] not in theirs.get("/orders") and service_id not in theirs.get("/services")
    service = f"/services/{service_id}"
    for path in (f"/orders/{done['id']}", f"/orders/{done['id']}/state", service):
        assert theirs.client.get(path).status_code == 404, path
    theirs.post(f"/orders/{done['id']}/actions", 404, action="comment", comment="hi")
    theirs.post(f"{service}/actions", 404, action="unsubscribe")
    assert (
        member.ok(member.get(service.replace("/services", "/service-instances")))["state"]
        == "active"
    )
