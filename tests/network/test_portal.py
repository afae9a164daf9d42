"""The network pages of the portal: a tenant's VPC trees and EIPs, the platform's IP pools
and the hosts' data-plane agents."""

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.support.api import ADMIN_PASSWORD, PASSWORD, Api
from tests.support.network import port, public_pool, sdn_zone, vpc, vxnet
from tests.test_portal_forms import ORIGIN
from yunguan.core import clock


class Portal:
    """One browser session: a logged-in cookie, form posts from this site."""

    def __init__(self, app, username: str, password: str = PASSWORD) -> None:
        self.client = TestClient(app)
        login = {"username": username, "password": password}
        answer = self.client.post("/login", data=login, headers=ORIGIN, follow_redirects=False)
        assert answer.status_code == 303, answer.text

    def get(self, path: str, status: int = 200) -> str:
        answer = self.client.get(path)
        assert answer.status_code == status, answer.text
        return answer.text

    def post(self, path: str, status: int = 200, **form: str) -> str:
        answer = self.client.post(path, data=form, headers=ORIGIN)
        assert answer.status_code == status, answer.text
        return answer.text


def test_a_member_builds_its_networks_and_sees_only_its_own(app, admin: Api, root_id: str) -> None:
    site = sdn_zone(admin)
    zone_id, host_id = site["zone"]["id"], site["hosts"][1]["id"]
    public_pool(admin, zone_id, "203.0.113.0/28")
    acme, globex = admin.tenant(root_id, "Acme"), admin.tenant(root_id, "Globex")
    member = admin.as_user(acme["id"], "acme-net")
    theirs = vpc(
        admin.as_user(globex["id"], "globex-net"), zone_id, "10.99.0.0/16", name="globex-vpc"
    )
    net = vpc(member, zone_id, "10.10.0.0/16", name="acme-vpc")
    web = vxnet(member, net["id"], "10.10.1.0/24", name="web")
    nic = port(admin, web["id"], host_id, name="nic0", device_id="vm-web01")
    portal = Portal(app, "acme-net")

    page = portal.get("/networks")
    assert 'href="/networks"' in page and 'href="/ip-pools"' not in page
    assert "acme-vpc" in page and "10.10.1.0/24" in page and "gateway 10.10.1.1" in page
    assert nic["ip"] == "10.10.1.2"
    assert f'<li data-port="{nic["id"]}"><code>10.10.1.2</code> nic0' in page
    assert "vm-web01" in page and host_id in page
    assert "globex-vpc" not in page and "10.99.0.0/16" not in page and theirs["id"] not in page

    made = portal.post("/networks/vpcs", name="apps", zone_id=zone_id, cidr="172.20.0.0/16")
    assert "Created VPC “apps” (172.20.0.0/16)." in made
    apps = member.ok(member.get("/vpcs", params={"name": "apps"}))["items"][0]
    for cidr, status, error in (
        ("8.8.0.0/16", 400, "8.8.0.0/16 is not a private IPv4 network"),
        ("10.0.0.0/8", 400, "a VPC&#39;s prefix is /16 to /28, not /8"),
        ("lots", 422, "cidr: String should match pattern"),
    ):
        refused = portal.post("/networks/vpcs", status, name="x", zone_id=zone_id, cidr=cidr)
        assert f'<p class="error" role="alert">{error}' in refused, cidr
    assert len(member.ok(member.get("/vpcs"))["items"]) == 2  # nothing made by the refusals

    sub = portal.post(f"/networks/vpcs/{apps['id']}/vxnets", name="app", cidr="172.20.1.0/24")
    assert "Created vxnet “app” (172.20.1.0/24, gateway 172.20.1.1)." in sub
    outside = portal.post(
        f"/networks/vpcs/{apps['id']}/vxnets", 400, name="out", cidr="10.10.2.0/24"
    )
    assert "10.10.2.0/24 is not inside the VPC&#39;s 172.20.0.0/16" in outside
    elsewhere = portal.post(
        f"/networks/vpcs/{theirs['id']}/vxnets", 404, name="in", cidr="10.99.1.0/24"
    )
    assert "not found" in elsewhere

    # EIPs: allocate two, one for the port (1:1 NAT), one for the VPC's router (SNAT)
    for _ in range(2):
        assert "Allocated EIP 203.0.113." in portal.post("/networks/eips", bandwidth_mbps="20")
    first, second = member.ok(member.get("/eips"))["items"]
    bound = portal.post(f"/networks/eips/{first['id']}", action="bind", target=f"port:{nic['id']}")
    assert f"EIP {first['address']} bound." in bound and f"EIP {first['address']}</mark>" in bound
    assert "10.10.1.2 in acme-vpc/web</td>" in bound  # the EIP's row names its port
    snat = portal.post(f"/networks/eips/{second['id']}", action="bind", target=f"vpc:{net['id']}")
    assert f"SNAT {second['address']}" in snat
    assert member.ok(member.get(f"/eips/{second['id']}"))["vpc_id"] == net["id"]
    unbound = portal.post(f"/networks/eips/{first['id']}", action="unbind")
    assert f"EIP {first['address']} unbound." in unbound
    for target, status, error in (
        ("", 400, "bind to a port_id or to a vpc_id"),
        (f"vpc:{theirs['id']}", 404, "not found"),
        (f"vpc:{net['id']}", 409, "has an EIP already"),
    ):
        form = {"action": "bind", "target": target}
        refused = portal.post(f"/networks/eips/{first['id']}", status, **form)
        assert error in refused, target
    wrong = portal.post(f"/networks/eips/{first['id']}", 422, action="x")
    assert "action: Input should be &#39;bind&#39; or &#39;unbind&#39;" in wrong
    assert "EIP deleted." in portal.post(f"/networks/eips/{first['id']}/delete")
    assert first["address"] not in portal.get("/networks")

    # deletes: in order, and only one's own
    busy = portal.post(f"/networks/vpcs/{apps['id']}/delete", 409)
    assert "still has vxnets; delete them first" in busy
    portal.post(f"/networks/vpcs/{theirs['id']}/delete", 404)
    portal.post(f"/networks/routers/{apps['id']}/delete", 404)
    app_net = member.ok(member.get("/vxnets", params={"vpc_id": apps["id"]}))["items"][0]
    assert "Vxnet deleted." in portal.post(f"/networks/vxnets/{app_net['id']}/delete")
    assert "VPC deleted." in portal.post(f"/networks/vpcs/{apps['id']}/delete")
    audited = admin.ok(admin.get("/audit-events", params={"action": "vpc.delete"}))["items"]
    assert [e["status_code"] for e in audited] == [200, 404, 409]  # refusals are audited too
    assert (audited[0]["target_id"], audited[0]["result"]) == (apps["id"], "success")
    assert [v["name"] for v in member.ok(member.get("/vpcs"))["items"]] == ["acme-vpc"]


def test_ip_pools_page_shows_usage_and_creates_pools(app, admin: Api, root_id: str) -> None:
    site = sdn_zone(admin)
    zone_id = site["zone"]["id"]
    public = public_pool(admin, zone_id, "203.0.113.0/28")  # 14 addresses
    for _ in range(3):
        admin.ok(admin.post("/eips", {"zone_id": zone_id}), 201)
    portal = Portal(app, "admin", ADMIN_PASSWORD)

    page = portal.get("/ip-pools")
    assert 'href="/ip-pools"' in page and 'href="/networks"' in page
    row = page.split(f'data-pool="{public["id"]}"')[1].split("</tr>")[0]
    assert '<progress value="3" max="14">' in row and "<small>3/14</small>" in row
    assert '"used">3<' in row and '"reserved">0<' in row and '"free">11<' in row
    assert "zone-a" in row and "vni" in page and "100-4000" in page

    made = portal.post(
        "/ip-pools/vlan-pools/new",
        name="guest-vlans",
        zone_id=zone_id,
        first_id="100",
        last_id="199",
        cidr="10.50.0.0/24",
        gateway="10.50.0.1",
    )
    assert "Created VLAN pool “guest-vlans” (100-199)." in made
    overlap = portal.post(
        "/ip-pools/vlan-pools/new", 409, name="o", zone_id=zone_id, first_id="5", last_id="20"
    )
    assert "the id range overlaps another pool of the zone" in overlap
    vlans = admin.ok(admin.get("/vlan-pools", params={"name": "guest-vlans"}))["items"][0]
    made = portal.post(
        "/ip-pools/new",
        name="guest",
        vlan_pool_id=vlans["id"],
        ranges="10.50.0.10-10.50.0.19\n10.50.0.30\n",
        reserved="10.50.0.11-10.50.0.12",
    )
    assert "Created IP pool “guest” (10.50.0.0/24, 9 free)." in made
    pool = admin.ok(admin.get("/ip-pools", params={"vlan_pool_id": vlans["id"]}))["items"][0]
    assert pool["ranges"] == [["10.50.0.10", "10.50.0.19"], ["10.50.0.30", "10.50.0.30"]]
    assert pool["usage"] == {"total": 11, "used": 0, "reserved": 2, "cooling": 0, "free": 9}
    row = made.split(f'data-pool="{pool["id"]}"')[1].split("</tr>")[0]
    assert '"reserved">2<' in row and '"free">9<' in row
    outside = portal.post(
        "/ip-pools/new", 400, name="bad", vlan_pool_id=vlans["id"], ranges="10.60.0.1-10.60.0.9"
    )
    assert "10.60.0.1" in outside and 'class="error"' in outside


def test_ip_pools_are_for_platform_administrators(app, admin: Api, root_id: str) -> None:
    sdn_zone(admin)
    acme = admin.tenant(root_id, "Acme")
    admin.user(acme["id"], "acme-admin", ["tenant-admin"])
    portal = Portal(app, "acme-admin")
    assert 'href="/ip-pools"' not in portal.get("/")
    assert portal.client.get("/ip-pools").status_code == 403
    form = {"name": "v", "zone_id": "zone-x", "first_id": "1", "last_id": "2"}
    assert portal.post("/ip-pools/vlan-pools/new", 403, **form)
    assert admin.ok(admin.get("/vlan-pools", params={"name": "v"}))["items"] == []


def test_sdn_agents_page_shows_each_hosts_agent(app, admin: Api, root_id: str) -> None:
    site = sdn_zone(admin, hosts=3)
    current, behind, silent = (h["id"] for h in site["hosts"])
    net = vpc(admin, site["zone"]["id"], "10.0.0.0/16", routing_mode="full")
    subnet = vxnet(admin, net["id"], "10.0.1.0/24")
    for host in (current, behind, silent):
        port(admin, subnet["id"], host)
    version = admin.ok(admin.get(f"/sdn/hosts/{current}"))["version"]
    report = {"applied_version": version, "routers": 1, "entries": 7}
    admin.ok(admin.post(f"/sdn/hosts/{current}/status", report), 204)
    failed = {net["id"]: "RuntimeError: nft: no such table"}
    older = {**report, "applied_version": version - 1, "errors": failed}
    admin.ok(admin.post(f"/sdn/hosts/{behind}/status", older), 204)
    portal = Portal(app, "admin", ADMIN_PASSWORD)

    page = portal.get("/sdn")
    assert 'href="/sdn"' in page
    rows = {h: page.split(f'data-host="{h}"')[1].split("</tr>")[0] for h in (current, behind)}
    assert f"<td>{version}</td>" in rows[current] and "just now" in rows[current]
    assert 'data-agent="errors">none<' in rows[current] and "behind" not in rows[current]
    assert 'data-state="behind"' in rows[behind] and failed[net["id"]] in rows[behind]
    assert 'data-state="never reported"' in page.split(f'data-host="{silent}"')[1]
    assert 'data-state="stale"' not in page
    acme = admin.tenant(root_id, "Acme")
    admin.user(acme["id"], "acme-admin", ["tenant-admin"])
    tenant_portal = Portal(app, "acme-admin")
    assert 'href="/sdn"' not in tenant_portal.get("/")
    assert tenant_portal.client.get("/sdn").status_code == 403
    later = clock.now() + timedelta(minutes=2)  # silent agents turn stale
    clock.set_clock(lambda: later)
    stale = portal.get("/sdn")
    assert stale.count('data-state="stale"') == 2 and "2 min ago" in stale
