"""A real virtual machine through the API: a libvirt provider is registered, its host
collected, and an instance provisioned, booted, stopped and deleted (TCG guests: Debian's
kernel and a busybox initramfs, see tests/support)."""

import libvirt
import pytest

from tests.providers import test_libvirt
from tests.support import guest_image, libvirtd, network
from tests.support.api import Api
from tests.support.compute import act, create, libvirt_zone, wait_console
from tests.support.waiting import wait_operation
from yunguan.providers.libvirt import Config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("workflows")]
daemon, guest, config = test_libvirt.daemon, test_libvirt.guest, test_libvirt.config


def test_a_real_vm_provisioned_through_the_api(
    admin: Api, root_id: str, config: Config, guest: guest_image.Guest
) -> None:
    place = libvirt_zone(admin, config, guest)
    zone, hosts = place["zone"], place["hosts"]
    assert [h["provider_id"] for h in hosts] == [place["provider"]["id"]]
    assert hosts[0]["cpu_cores"] > 0
    team = admin.tenant(root_id, "Team")
    member = admin.as_user(team["id"], "dev", ["member"])
    vpc = network.vpc(member, zone["id"], "10.2.0.0/16")
    network.vxnet(member, vpc["id"], "10.2.1.0/24")

    accepted = create(member, place, "vm1")
    with libvirtd.removed_afterwards(config.uri, accepted["resource"]["id"]):
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
