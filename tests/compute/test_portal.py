"""The compute and provider pages of the portal, on a simulated zone with real workflows."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.network.test_portal import Portal
from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.compute import created, simulated_zone
from yunguan.core import clock
from yunguan.core.db import Database
from yunguan.providers.base import Capability
from yunguan.providers.models import Provider, SimulatedMachine
from yunguan.providers.simulator import SimulatorDriver

pytestmark = pytest.mark.usefixtures("workflows")


@pytest.fixture
def portal(app, member: Api) -> Portal:
    return Portal(app, "dev")


def poll(portal: Portal, path: str, until: str, timeout: float = 30) -> str:
    """Get a polled fragment again, as HTMX does every second, until it shows ``until``."""
    deadline = time.monotonic() + timeout
    while True:
        text = portal.get(path)
        if until in text:
            return text
        assert time.monotonic() < deadline, f"{until!r} never shown: {text}"
        time.sleep(0.1)


def row_of(page: str, instance_id: str) -> str:
    return page.split(f'data-instance="{instance_id}"')[1].split("</tr>")[0]


def test_a_member_sees_its_instances_and_not_another_tenants(
    admin: Api, root_id: str, member: Api, place: dict, vxnet: dict, portal: Portal
) -> None:
    mine = created(member, place, "web")
    stranger = admin.as_user(admin.tenant(root_id, "Other")["id"], "ext", ["member"])
    theirs = created(stranger, place, "secret-vm")

    page = portal.get("/instances")
    assert 'href="/instances"' in page and 'href="/providers"' not in page
    row = row_of(page, mine["id"])
    assert 'data-state="running"' in row and f"<code>{mine['ip']}</code>" in row
    assert "zone-a" in row and "s2.small" in row and "<th>Host</th>" not in page
    assert "hx-trigger" not in row  # nothing being worked on: no polling
    assert ">Stop<" in row and ">Reboot<" in row and ">Delete<" in row and ">Start<" not in row
    assert theirs["id"] not in page and "secret-vm" not in page

    assert portal.client.get(f"/instances/{theirs['id']}").status_code == 404
    assert portal.client.get(f"/instances/{theirs['id']}/row").status_code == 404
    portal.post(f"/instances/{theirs['id']}/actions", 404, action="stop")
    assert stranger.ok(stranger.get(f"/instances/{theirs['id']}"))["state"] == "running"


def test_the_wizard_creates_instances_and_follows_their_provisioning(
    member: Api, place: dict, vxnet: dict, portal: Portal
) -> None:
    zone_id = place["zone"]["id"]
    wizard = portal.get(f"/instances/new?zone_id={zone_id}&name=kept")
    assert "debian-12" in wizard and "shop/web-net (10.1.1.0/24)" in wizard
    assert 'value="kept"' in wizard and "automatic" in wizard

    form = {
        "zone_id": zone_id,
        "flavor_id": place["flavor"]["id"],
        "image_id": place["image"]["id"],
        "vxnet_id": vxnet["id"],
    }
    made = portal.post("/instances/new", name="app", count="2", **form)
    assert "Creating “app-1”, “app-2”." in made
    instances = member.ok(member.get("/instances"))["items"]
    assert sorted(i["name"] for i in instances) == ["app-1", "app-2"]
    for instance in instances:
        row = poll(portal, f"/instances/{instance['id']}/row", 'data-progress="100"')
        assert "instance.create succeeded · 100%" in row and 'data-state="running"' in row, row
        assert "hx-trigger" not in row  # done: the row stops polling
        assert "<code>10.1.1." in row and ">Stop<" in row

    for fields, status, error in (
        ({"name": ""}, 422, "name: String should have at least 1 character"),
        ({"name": "x", "count": "0"}, 422, "count: Input should be greater than or equal to 1"),
        ({"name": "x", "flavor_id": "flv-nothing"}, 404, "flavor flv-nothing not found"),
    ):
        refused = portal.post("/instances/new", status, **(form | fields))
        assert f'<p class="error" role="alert">{error}' in refused, fields
    assert len(member.ok(member.get("/instances"))["items"]) == 2  # nothing made by refusals


def test_a_failed_provisioning_shows_its_reason(admin: Api, member: Api, portal: Portal) -> None:
    broken = simulated_zone(admin, failures={"create": 1.0})
    ids = {f"{kind}_id": broken[kind]["id"] for kind in ("zone", "flavor", "image")}
    assert "Creating “doomed”." in portal.post("/instances/new", name="doomed", **ids)
    doomed = member.ok(member.get("/instances"))["items"][0]
    row = poll(portal, f"/instances/{doomed['id']}/row", "instance.create failed: ")
    assert 'data-state="error"' in row and "simulated failure of create" in row
    assert ">Delete<" in row and ">Start<" not in row and "hx-trigger" not in row
    listed = row_of(portal.get("/instances"), doomed["id"])
    assert 'data-state="error"' in listed and "simulated failure of create" in listed


def test_actions_change_the_state_and_refusals_are_shown(
    member: Api, place: dict, vxnet: dict, portal: Portal
) -> None:
    instance = created(member, place, "web")
    path = f"/instances/{instance['id']}"

    stopping = portal.post(f"{path}/actions", action="stop")
    assert "Stopping “web”." in stopping and 'data-state="stopping"' in stopping
    assert f'hx-get="{path}/row" hx-trigger="every 1s"' in stopping
    stopped = poll(portal, f"{path}/row", 'data-state="stopped"')
    assert ">Start<" in stopped and ">Stop<" not in stopped and ">Reboot<" not in stopped

    refused = portal.post(f"{path}/actions", 409, action="reboot")
    assert "is stopped; reboot needs it running" in refused and 'data-state="stopped"' in refused
    wrong = portal.post(f"{path}/actions", 422, action="explode")
    assert "action: Input should be" in wrong

    portal.post(f"{path}/actions", action="start")
    poll(portal, f"{path}/row", 'data-state="running"')
    summary = portal.post(f"{path}/actions", action="reboot", view="summary")
    assert 'id="instance-summary"' in summary and "Rebooting “web”." in summary
    poll(portal, f"{path}/summary", "instance.power succeeded · 100%")

    deleting = portal.post(f"{path}/delete")
    assert "Deleting “web”." in deleting and 'data-state="deleting"' in deleting
    poll(portal, f"{path}/row", 'data-state="deleted"')
    assert instance["id"] not in portal.get("/instances")
    assert member.ok(member.get(path))["state"] == "deleted"
    assert "The instance is deleted: its machine is gone." in portal.get(path)


def test_the_detail_page_shows_network_events_and_console(
    member: Api, place: dict, vxnet: dict, portal: Portal, monkeypatch
) -> None:
    instance = created(member, place, "web")
    page = portal.get(f"/instances/{instance['id']}")
    assert "<h3>web <mark" in page and 'data-state="running"' in page
    network_part = page.split('id="instance-network"')[1].split("</table>")[0]
    assert "web-net" in network_part and instance["port_id"] in network_part
    assert instance["ip"] in network_part and instance["mac"] in network_part
    events = page.split('id="instance-events"')[1].split("</table>")[0]
    assert "instance.create" in events and "instance.running" in events
    console = page.split('id="instance-console"')[1].split("</section>")[0]
    assert "booting web" in console and "web login:" in console

    unsupported = Capability(False, "no serial line here")
    monkeypatch.setitem(SimulatorDriver.capabilities, "console_log", unsupported)
    fragment = portal.get(f"/instances/{instance['id']}/console")
    assert "provider does not offer a console log" in fragment and "login:" not in fragment


def test_providers_are_for_platform_administrators(
    app, admin: Api, team: dict, place: dict, portal: Portal
) -> None:
    provider_id = place["provider"]["id"]
    admin.user(team["id"], "team-admin", ["tenant-admin"])
    for user in (portal, Portal(app, "team-admin")):
        assert 'href="/providers"' not in user.get("/")
        assert user.client.get("/providers").status_code == 403
        assert user.client.get(f"/providers/{provider_id}").status_code == 403
        user.post(f"/providers/{provider_id}/sync", 403)
        user.post("/providers/new", 403, name="mine", kind="simulator", cluster_id="c-x")
    assert len(admin.ok(admin.get("/providers"))["items"]) == 1


def test_an_admin_sees_provider_freshness_syncs_and_imports(
    app, admin: Api, db: Database, team: dict, place: dict
) -> None:
    portal = Portal(app, "admin", ADMIN_PASSWORD)
    provider = place["provider"]
    row_path = f"/providers/{provider['id']}/row"
    page = portal.get("/providers")
    assert 'href="/providers"' in page and 'href="/instances"' in page
    row = page.split(f'data-provider="{provider["id"]}"')[1].split("</tr>")[0]
    assert "simulator" in row and "zone-a" in row and 'data-hosts="4"' in row
    assert "synced just now" in row and 'data-freshness="fresh"' in row

    interval = app.state.settings.provider_sync_minutes
    synced_at = clock.now()
    clock.set_clock(lambda: synced_at + timedelta(minutes=2 * interval - 1))
    assert 'data-freshness="fresh"' in portal.get(row_path)
    clock.set_clock(lambda: synced_at + timedelta(minutes=2 * interval + 1))
    row = portal.get(row_path)
    assert f"synced {2 * interval + 1} min ago" in row and 'data-freshness="stale"' in row
    clock.set_clock(None)

    with db.session() as session:  # a failed sync, and a machine made outside Yunguan
        session.execute(
            update(Provider).where(Provider.id == provider["id"]).values(sync_error="timeout")
        )
        session.add(
            SimulatedMachine(
                external_id="legacy-vm-1",
                realm=provider["config"]["realm"],
                name="legacy",
                host=f"{provider['config']['realm']}-00001",
                vcpus=1,
                memory_mb=1024,
            )
        )
    assert '<small class="error">timeout</small>' in portal.get(row_path)
    syncing = portal.post(f"/providers/{provider['id']}/sync")
    assert f"Sync of “{provider['name']}” queued." in syncing
    detail = poll(portal, f"/providers/{provider['id']}", 'data-machine="legacy-vm-1"')
    assert "Credentials</th><td>none" in detail and detail.count("data-host=") == 4
    row = portal.get(row_path)
    assert "timeout" not in row and "hx-trigger" not in row and "synced just now" in row

    imported = portal.post(
        f"/providers/{provider['id']}/import",
        external_id="legacy-vm-1",
        tenant_id=team["id"],
        flavor_id=place["flavor"]["id"],
        image_id=place["image"]["id"],
    )
    assert "Imported “legacy” as instance i-" in imported
    assert 'data-machine="legacy-vm-1"' not in imported
    adopted = admin.ok(admin.get("/instances", params={"tenant_id": team["id"]}))["items"]
    assert [(i["name"], i["imported"], i["state"]) for i in adopted] == [
        ("legacy", True, "running")
    ]
    again = portal.post(
        f"/providers/{provider['id']}/import",
        404,
        external_id="legacy-vm-1",
        tenant_id=team["id"],
        flavor_id=place["flavor"]["id"],
        image_id=place["image"]["id"],
    )
    assert "listed no importable machine legacy-vm-1" in again


def test_an_admin_registers_a_provider_whose_secret_is_never_shown(
    app, admin: Api, place: dict
) -> None:
    from tests.support import topology

    portal = Portal(app, "admin", ADMIN_PASSWORD)
    cluster = topology.cluster(admin, place["zone"]["id"], "sim-2")
    form = {"name": "sim-two", "kind": "simulator", "cluster_id": cluster["id"]}
    bad = portal.post(
        "/providers/new", 400, **form, config="{hosts: 2", secret='{"token": "b4d-s3cret"}'
    )
    assert "config is not valid JSON" in bad and "b4d-s3cret" not in bad
    made = portal.post(
        "/providers/new", **form, config='{"hosts": 2}', secret='{"token": "t0p-s3cret"}'
    )
    assert "Registered provider “sim-two”; its first sync is queued." in made
    assert "t0p-s3cret" not in made
    provider = admin.ok(admin.get("/providers", params={"kind": "simulator"}))["items"]
    registered = next(p for p in provider if p["name"] == "sim-two")
    assert registered["has_credentials"] and registered["config"]["hosts"] == 2
    row = poll(portal, f"/providers/{registered['id']}/row", "synced just now")  # its first sync
    assert 'data-hosts="2"' in row
    detail = portal.get(f"/providers/{registered['id']}")
    assert "stored (encrypted, never shown)" in detail and "t0p-s3cret" not in detail
    assert '"hosts": 2' in detail
