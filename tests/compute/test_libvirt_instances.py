"""A real virtual machine through the API: a libvirt provider is registered, its host
collected, and an instance provisioned, booted, stopped and deleted (TCG guests: Debian's
kernel and a busybox initramfs, see tests/support)."""

import time

import libvirt
import pytest

from tests.providers import test_libvirt
from tests.support import guest_image, network, topology
from tests.support.api import Api
from tests.support.compute import act, create, provider
from tests.support.waiting import wait_operation
from yunguan.providers.libvirt import Config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("workflows")]
daemon, guest, config = test_libvirt.daemon, test_libvirt.guest, test_libvirt.config


def wait_console(api: Api, instance_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while guest_image.MARKER not in (
        out := api.ok(api.get(f"/instances/{instance_id}/console"))["output"]
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"the guest did not boot; console ends:\n{out[-2000:]}")
        time.sleep(0.5)
    return out


def test_a_real_vm_provisioned_through_the_api(
    admin: Api, root_id: str, config: Config, guest: guest_image.Guest
) -> None:
    zone = topology.zone(admin, topology.region(admin)["id"], "kvm-zone")
    cluster = topology.cluster(admin, zone["id"], "kvm-1")
    made = provider(admin, cluster["id"], "libvirt", config=config.model_dump(mode="json"))
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": cluster["id"]}))["items"]
    assert [h["provider_id"] for h in hosts] == [made["id"]] and hosts[0]["cpu_cores"] > 0
    vnis = {"name": "vni", "zone_id": zone["id"], "network_type": "vxlan"}
    admin.ok(admin.post("/vlan-pools", {**vnis, "first_id": 100, "last_id": 200}), 201)
    flavor = admin.ok(
        admin.post("/flavors", {"name": "t1", "vcpus": 1, "memory_mb": 128, "disk_gb": 1}), 201
    )
    image = admin.ok(
        admin.post(
            "/images",
            {
                "name": "busybox",
                "visibility": "public",
                "locations": {zone["id"]: ""},
                "properties": {
                    "kernel": str(guest.kernel),
                    "initrd": str(guest.initrd),
                    "cmdline": guest.cmdline,
                },
            },
        ),
        201,
    )
    team = admin.tenant(root_id, "Team")
    member = admin.as_user(team["id"], "dev", ["member"])
    vpc = network.vpc(member, zone["id"], "10.2.0.0/16")
    network.vxnet(member, vpc["id"], "10.2.1.0/24")

    accepted = create(member, {"flavor": flavor, "image": image}, "vm1")
    operation = wait_operation(member, accepted["operation"]["id"], timeout=180)
    assert operation["state"] == "succeeded", operation
    instance = member.ok(member.get(f"/instances/{accepted['resource']['id']}"))
    assert instance["state"] == "running" and instance["host_id"] == hosts[0]["id"]
    wait_console(member, instance["id"])

    conn = libvirt.open(config.uri)
    try:
        domain = conn.lookupByName(instance["id"])
        assert domain.isActive()
        assert instance["mac"] in domain.XMLDesc() and config.bridge in domain.XMLDesc()
        assert act(member, instance["id"], "stop")["state"] == "succeeded"
        assert not domain.isActive()
        deleted = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
        assert wait_operation(member, deleted["operation"]["id"], 120)["state"] == "succeeded"
        with pytest.raises(libvirt.libvirtError):
            conn.lookupByName(instance["id"])
    finally:
        conn.close()
    assert admin.ok(admin.get(f"/hosts/{hosts[0]['id']}"))["used_vcpus"] == 0
