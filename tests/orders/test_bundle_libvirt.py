"""A bundle fulfilled on a real hypervisor: its network, a TCG guest on it, a data volume
of the libvirt storage pool attached to the guest, and an EIP bound to its port; then
unsubscribed, and every piece given back (the domain and the volume gone from libvirt)."""

import libvirt
import pytest

from tests.orders.conftest import fulfilled, offered, order
from tests.orders.test_bundles import COUNTED, release_completely, resources, stack, used
from tests.providers import test_libvirt
from tests.support import guest_image, libvirtd, network
from tests.support.api import Api
from tests.support.compute import libvirt_zone
from yunguan.providers.libvirt import Config
from yunguan.providers.libvirt.driver import volume_name

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("workflows")]
daemon, guest, config = test_libvirt.daemon, test_libvirt.guest, test_libvirt.config


def test_a_bundle_on_libvirt_is_made_and_given_back(
    admin: Api,
    root_id: str,
    member: Api,
    team: dict,
    config: Config,
    guest: guest_image.Guest,
) -> None:
    place = libvirt_zone(admin, config, guest)
    network.public_pool(admin, place["zone"]["id"])
    app = {"name": "app", "flavor_id": place["flavor"]["id"], "image_id": place["image"]["id"]}
    one = stack(
        place,
        instances=[app],
        volumes=[{"instance": "app", "size_gb": 1}],
        eip={"instance": "app"},
    )
    placed = order(member, offered(admin, root_id, one, "App on KVM"), name="app")
    done = fulfilled(member, placed)
    service = member.ok(member.get(f"/service-instances/{done['service_instance_id']}"))
    made = resources(member, service)
    (instance,), (volume,), (eip,) = made["instance"], made["volume"], made["eip"]
    with libvirtd.removed_afterwards(config.uri, instance["id"]):
        assert instance["state"] == "running" and instance["vxnet_id"] == made["vxnet"][0]["id"]
        assert volume["state"] == "in-use" and eip["port_id"] == instance["port_id"]
        conn = libvirt.open(config.uri)
        try:
            pool = conn.storagePoolLookupByName(config.storage_pool)
            assert volume_name(volume["id"]) in pool.listVolumes()
            disks = conn.lookupByName(instance["id"]).XMLDesc()
            assert f"dev='{volume['device'].removeprefix('/dev/')}'" in disks

            unsubscribe = {"action": "unsubscribe"}
            member.ok(member.post(f"/service-instances/{service['id']}/actions", unsubscribe))
            release_completely(member, service["id"], timeout=180)
            with pytest.raises(libvirt.libvirtError):
                conn.lookupByName(instance["id"])
            pool.refresh()
            assert volume_name(volume["id"]) not in pool.listVolumes()
        finally:
            conn.close()
    assert used(admin, team["id"]) == [0] * len(COUNTED)
