"""The portal in a real browser (Debian's chromium driven by Playwright)."""

from tests.browser.conftest import BROWSER, login
from tests.support.api import ADMIN_PASSWORD, PASSWORD, Api

pytestmark = BROWSER


def test_admin_creates_a_sub_tenant_and_a_user(page, live_admin: Api) -> None:
    login(page, "admin", ADMIN_PASSWORD)
    assert page.locator("nav.side h6").inner_text() == "Platform administration"
    page.click("nav.side >> text=Tenants")
    page.wait_for_url("**/tenants")
    page.fill("#tenants-panel input[name=name] >> nth=-1", "Shenzhen Park")
    page.click("text=Create tenant")
    page.wait_for_selector("text=Created tenant “Shenzhen Park”.")
    assert page.locator(".tree strong", has_text="Shenzhen Park").count() == 1
    tenant = live_admin.ok(live_admin.get("/tenants", params={"name": "Shenzhen Park"}))["items"]
    assert len(tenant) == 1

    page.click("nav.side >> text=Users")
    page.fill("#users-panel input[name=username]", "park-operator")
    page.fill("#users-panel input[name=password]", PASSWORD)
    page.select_option("#users-panel form[hx-post] select[name=tenant_id]", label="Shenzhen Park")
    page.check("#users-panel input[value=tenant-admin]")
    page.click("text=Create user")
    page.wait_for_selector("text=Created user “park-operator”.")
    row = page.locator("tr[data-user=park-operator]")
    assert "tenant-admin" in row.inner_text() and "Shenzhen Park" in row.inner_text()

    page.click("nav.side >> text=Audit log")
    page.fill("input[name=action]", "user.create")
    page.click("form.filters button")
    page.wait_for_selector("#audit-rows >> text=user.create")
    assert "Shenzhen Park" not in page.locator("#audit-rows").inner_text()


def test_form_errors_are_shown_and_nothing_is_created(page, live_admin: Api, root_id: str) -> None:
    live_admin.tenant(root_id, "Taken")
    login(page, "admin", ADMIN_PASSWORD)
    page.goto("/tenants")
    page.fill("#tenants-panel input[name=name] >> nth=-1", "Taken")
    page.click("text=Create tenant")
    page.wait_for_selector("#tenants-panel .error")
    assert "already exists" in page.locator("#tenants-panel .error").inner_text()


def test_tenant_user_sees_its_own_navigation_and_subtree(
    page, live_admin: Api, root_id: str
) -> None:
    acme = live_admin.tenant(root_id, "Acme")
    live_admin.tenant(root_id, "Globex")
    live_admin.tenant(acme["id"], "<script>alert('x')</script>")
    live_admin.user(acme["id"], "acme-admin", ["tenant-admin"])
    login(page, "acme-admin", PASSWORD)
    assert page.locator("nav.side h6").inner_text() == "My organisation"
    assert page.locator("nav.side >> text=Roles").count() == 0
    page.goto("/tenants")
    tree = page.locator(".tree").first.inner_text()
    assert "Acme" in tree and "Globex" not in tree
    assert "<script>alert('x')</script>" in tree  # shown as text, never run


def test_bad_login_and_logout(page) -> None:
    page.goto("/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "invalid username or password" in page.locator(".error").inner_text()
    login(page, "admin", ADMIN_PASSWORD)
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/tenants")
    assert page.url.endswith("/login")


def test_groups_and_move_in_the_browser(page, live_admin: Api, root_id: str) -> None:
    acme = live_admin.tenant(root_id, "Acme")
    other = live_admin.tenant(root_id, "Other")
    team = live_admin.tenant(acme["id"], "Team")
    user = live_admin.user(acme["id"], "member-one")
    group = live_admin.ok(live_admin.post("/groups", {"name": "ops", "tenant_id": acme["id"]}), 201)
    live_admin.post(
        f"/groups/{group['id']}/actions", {"action": "add-member", "user_id": user["id"]}
    )
    login(page, "admin", ADMIN_PASSWORD)
    page.click("nav.side >> text=Groups")
    page.click("button[aria-label='remove member-one']")
    page.wait_for_selector("text=Removed from “ops”.")
    assert live_admin.ok(live_admin.get(f"/groups/{group['id']}"))["member_ids"] == []

    page.goto("/tenants")
    node = page.locator(f"li[data-tenant='{team['id']}']")
    node.locator("summary").first.click()
    node.locator("select[name=parent_id]").first.select_option(label="Other")
    node.locator("text=Move here").first.click()
    page.wait_for_selector("text=Moved “Team”.")
    assert live_admin.ok(live_admin.get(f"/tenants/{team['id']}"))["parent_id"] == other["id"]


def test_topology_capacity_and_dry_run_in_the_browser(page, live_admin: Api, root_id: str) -> None:
    from tests.support import topology

    dc = topology.datacentre(live_admin, hosts=2, cpu_overcommit=2)
    live_admin.ok(live_admin.post("/placement/claims", topology.vm(root_id, vcpus=8)), 201)
    login(page, "admin", ADMIN_PASSWORD)
    page.click("nav.side >> text=Infrastructure")
    page.wait_for_url("**/infrastructure")
    cluster = page.locator(f"[data-node='{dc['cluster']['id']}']")
    assert "2/2 hosts" in cluster.inner_text() and "8/64" in cluster.inner_text()
    page.click("summary:has-text('New region')")
    page.fill("#topology-panel form[hx-post='/infrastructure/regions'] input[name=name]", "west")
    page.click("text=Create region")
    page.wait_for_selector("text=Created region “west”.")

    page.click(f"a:has-text('{dc['cluster']['name']}')")
    page.wait_for_selector("#hosts")
    host = dc["hosts"][0]
    page.click(f"[data-host='{host['id']}'] >> text=Maintenance")
    page.wait_for_selector(f"text=Host “{host['name']}” is now maintenance.")
    assert live_admin.ok(live_admin.get(f"/hosts/{host['id']}"))["state"] == "maintenance"

    page.click("nav.side >> text=Placement")
    page.wait_for_url("**/placement")
    page.fill("input[name=vcpus]", "4")
    page.click("text=Dry run")
    page.wait_for_selector("#verdict")
    verdict = page.locator("#verdict").inner_text()
    assert dc["hosts"][1]["name"] in verdict and "state" in verdict


def test_member_builds_a_vpc_in_the_browser(page, live_admin: Api, root_id: str) -> None:
    from tests.support.network import sdn_zone

    sdn_zone(live_admin, hosts=1)
    acme = live_admin.tenant(root_id, "Acme")
    live_admin.user(acme["id"], "acme-member")
    login(page, "acme-member", PASSWORD)
    page.click("nav.side >> text=Networks")
    page.wait_for_url("**/networks")
    page.fill("#networks-panel form[hx-post='/networks/vpcs'] input[name=name]", "shop")
    page.fill("#networks-panel form[hx-post='/networks/vpcs'] input[name=cidr]", "10.8.0.0/16")
    page.click("text=Create VPC")
    page.wait_for_selector("text=Created VPC “shop” (10.8.0.0/16).")
    vpc = page.locator("#vpcs > li", has_text="shop")
    vpc.locator("summary").click()
    vpc.locator("input[name=name]").fill("web")
    vpc.locator("input[name=cidr]").fill("10.9.0.0/24")
    vpc.locator("text=Add vxnet").click()
    page.wait_for_selector("#networks-panel .error")
    assert "not inside the VPC's 10.8.0.0/16" in page.locator("#networks-panel .error").inner_text()
    vpc = page.locator("#vpcs > li", has_text="shop")
    vpc.locator("summary").click()
    vpc.locator("input[name=name]").fill("web")
    vpc.locator("input[name=cidr]").fill("10.8.1.0/24")
    vpc.locator("text=Add vxnet").click()
    page.wait_for_selector("[data-vxnet] >> text=gateway 10.8.1.1")


def test_admin_creates_an_instance_and_stops_it_in_the_browser(
    page, live_admin: Api, workflows
) -> None:
    from tests.support.compute import simulated_zone

    simulated_zone(live_admin)
    login(page, "admin", ADMIN_PASSWORD)
    page.click("nav.side >> text=Instances")
    page.wait_for_url("**/instances")
    page.fill("#create-wizard input[name=name]", "browser-vm")
    page.click("#create-wizard button[type=submit]")
    page.wait_for_selector("text=Creating “browser-vm”.")
    row = page.locator("tr[data-instance]", has_text="browser-vm")
    row.locator("text=instance.create succeeded · 100%").wait_for()
    assert row.locator("mark[data-state=running]").count() == 1

    row.locator("a", has_text="browser-vm").click()
    page.wait_for_selector("#instance-summary")
    assert "browser-vm login:" in page.locator("#instance-console").inner_text()
    page.click("#instance-summary button:has-text('Stop')")
    page.wait_for_selector("#instance-summary mark[data-state=stopped]")
    assert page.locator("#instance-summary button:has-text('Start')").count() == 1
    instance = live_admin.ok(live_admin.get("/instances", params={"name": "browser-vm"}))
    assert [i["state"] for i in instance["items"]] == ["stopped"]
