"""The story of an order, told in a real browser: a member orders from the catalog, the
approver approves it in the inbox, the service comes up; a week before it expires the
member is reminded, renews, and later unsubscribes until the service is released."""

from datetime import UTC, datetime, timedelta

from tests.browser.conftest import BROWSER, login
from tests.catalog.conftest import make_template, publish
from tests.support.api import PASSWORD, Api
from tests.support.compute import simulated_zone
from yunguan.core import clock
from yunguan.core.clock import add_months
from yunguan.workflows.orders import service_lifecycle

pytestmark = BROWSER
SETTLING = 60_000  # ms: a workflow provisions or deletes a simulated machine meanwhile


def offer(admin: Api, root_id: str, place: dict) -> dict:
    """A published one-VM template offered as “Small VM” at 99.00 a month."""
    size = {"name": "size", "type": "choice", "choices": [place["flavor"]["id"]]}
    spec = {"flavor_id": {"param": "size"}, "image_id": place["image"]["id"]}
    template = make_template(
        admin, "small-vm", parameters=[size | {"default": place["flavor"]["id"]}], spec=spec
    )
    version = publish(admin, admin.as_user(root_id, "reviewer", ["platform-admin"]), template["id"])
    category = admin.ok(admin.post("/categories", {"name": "Compute"}), 201)
    item = {
        "name": "Small VM",
        "category_id": category["id"],
        "template_version_id": version["id"],
        "price_monthly": "99",
    }
    return admin.ok(admin.post("/catalog-items", item), 201)


def log_out(page) -> None:
    page.click("text=Log out")
    page.wait_for_url("**/login")


def move_clock_to(moment: datetime) -> None:
    """The injectable clock from now on reads ``moment`` plus the real time gone by since
    (time keeps moving: simulated machines boot and stop by this clock)."""
    offset = moment - datetime.now(UTC)
    clock.set_clock(lambda: datetime.now(UTC) + offset)


def tick() -> None:
    """One run of the periodic lifecycle job (its schedule runs it every minute)."""
    service_lifecycle(datetime.now(UTC), None)


def test_an_order_from_the_catalog_to_a_released_service(
    page, live_admin: Api, root_id: str
) -> None:
    place = simulated_zone(live_admin)
    acme = live_admin.tenant(root_id, "Acme")
    live_admin.user(acme["id"], "buyer", ["member"])
    boss = live_admin.user(acme["id"], "boss", ["approver"])
    stages = [{"name": "manager", "approvers": [boss["id"]]}]
    policy = {"tenant_id": acme["id"], "name": "acme", "stages": stages}
    live_admin.ok(live_admin.post("/approval-policies", policy), 201)
    item = offer(live_admin, root_id, place)

    # the member orders from the catalog
    login(page, "buyer", PASSWORD)
    assert page.locator("nav.side >> text=Approvals").count() == 0
    page.click("nav.side >> text=Catalog")
    page.locator(f"[data-item='{item['id']}'] a:has-text('Order')").click()
    page.fill("#order-form input[name=name]", "shop-web")
    page.select_option("#order-form select[name=term_months]", label="1 month")
    page.click("text=Place order")
    page.wait_for_url("**/orders/ord-*")
    order_url = page.url
    page.wait_for_selector("#order-state mark[data-state=pending-approval]")
    assert "manager" in page.locator("#order-plan").inner_text()
    log_out(page)

    # the approver approves it in the inbox
    login(page, "boss", PASSWORD)
    page.click("nav.side >> text=Approvals")
    row = page.locator("#approval-tasks tr", has_text="shop-web")
    assert "buyer" in row.inner_text() and "99.00" in row.inner_text()
    row.locator("input[name=comment]").fill("go ahead")
    row.locator("button:has-text('Approve')").click()
    page.wait_for_selector("text=Approved “shop-web”. Its fulfilment has started.")
    log_out(page)

    # the member watches it being fulfilled, then opens the service
    login(page, "buyer", PASSWORD)
    page.goto(order_url)
    page.wait_for_selector("#order-state mark[data-state=completed]", timeout=SETTLING)
    assert page.locator("#order-events tr[data-event=approved]").count() == 1
    page.click("[data-testid=service-link]")
    page.wait_for_selector("#service-panel h3 mark[data-state=active]")
    service_url = page.url
    expires = datetime.fromisoformat(
        page.locator("#subscription td[data-expires]").get_attribute("data-expires")
    )

    # a week before expiry, the lifecycle job reminds the member
    move_clock_to(expires - timedelta(days=7, minutes=-1))
    tick()
    login(page, "buyer", PASSWORD)  # again: the session expired with the clock's jump
    page.click("[data-testid=inbox]")
    reminder = page.locator("tr[data-notification]", has_text="“shop-web” expires in 7 day(s)")
    reminder.locator("a:has-text('Open')").click()
    page.wait_for_url(service_url)

    # the member renews for a month: the expiry moves a month on
    page.fill("#renew input[name=months]", "1")
    page.click("#renew button")
    renewed = add_months(expires, 1)
    page.wait_for_selector(f"text=Renewed “shop-web” until {renewed:%Y-%m-%d %H:%M} UTC.")
    shown = page.locator("#subscription td[data-expires]").get_attribute("data-expires")
    assert datetime.fromisoformat(shown) == renewed

    # then unsubscribes: the machine is deleted, and the next run of the job releases it
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#service-actions button:has-text('Unsubscribe')")
    page.wait_for_selector("text=Unsubscribed: “shop-web” is being released.")
    page.wait_for_selector("#service-resources mark[data-state=deleted]", timeout=SETTLING)
    tick()
    page.wait_for_selector("#service-panel h3 mark[data-state=released]")
    assert page.locator("#subscription mark[data-state=ended]").count() == 1
    assert page.locator("#service-actions").count() == 0
