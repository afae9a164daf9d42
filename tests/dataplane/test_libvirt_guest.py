"""A libvirt guest in the data plane: its NIC is a tap named for its port, which the host's
agent moves into the VPC's router, and a netns VM on another host pings it across VXLAN.
(TCG guests: Debian's kernel and a busybox initramfs that takes its address from the
kernel's ``ip=`` parameter, see tests/support/guest_image.py.)"""

import json

import pytest

from tests.providers import test_libvirt
from tests.support import guest_image, libvirtd, network, topology
from tests.support.api import Api
from tests.support.compute import create, libvirt_zone, wait_console
from tests.support.fabric import fabric, in_ns
from tests.support.waiting import wait_operation
from yunguan.dataplane import names
from yunguan.providers.libvirt import Config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("workflows", "kernel_tools")]
daemon, guest, config = test_libvirt.daemon, test_libvirt.guest, test_libvirt.config


def test_a_libvirt_guest_is_reached_across_hosts(
    admin: Api,
    root_id: str,
    live_url: str,
    daemon: libvirtd.Daemon,
    config: Config,
    guest: guest_image.Guest,
) -> None:
    wired = config.model_copy(update={"network": "dataplane", "address": "10.0.0.1"})
    place = libvirt_zone(admin, wired, guest)
    (hypervisor,) = place["hosts"]
    assert hypervisor["address"] == "10.0.0.1"
    others = topology.cluster(admin, place["zone"]["id"], "netns-1")
    peer = topology.host(admin, others["id"], "h1", address="10.0.0.2", traits=["sdn-gateway"])
    member = admin.as_user(admin.tenant(root_id, "Team")["id"], "dev", ["member"])
    vpc = network.vpc(member, place["zone"]["id"], "10.2.0.0/16")
    vxnet = network.vxnet(member, vpc["id"], "10.2.1.0/24")

    with fabric(2, live_url) as dc:
        dc.agent(0, hypervisor["id"], plug="tap", tap_netns=daemon.netns)
        dc.agent(1, peer["id"])
        accepted = create(member, place, "vm1", vxnet_id=vxnet["id"])
        with libvirtd.removed_afterwards(daemon.uri, accepted["resource"]["id"]):
            operation = wait_operation(member, accepted["operation"]["id"], timeout=180)
            assert operation["state"] == "succeeded", operation
            instance = member.ok(member.get(f"/instances/{accepted['resource']['id']}"))
            assert instance["host_id"] == hypervisor["id"]
            console = wait_console(member, instance["id"])
            assert f"ip={instance['ip']}::10.2.1.1:255.255.255.0::eth0:off" in console

            other = network.port(admin, vxnet["id"], peer["id"])  # binding to a host: admin
            dc.wait_ping(other, instance["ip"], timeout=60)
            assert dc.ping(other, instance["ip"], count=20, interval=0.05) == 20

            router = names.router_netns(dc.prefix(0), vpc["id"])
            tap = names.port_device(instance["port_id"])
            (link,) = json.loads(in_ns(router, "ip", "-j", "link", "show", "dev", tap))
            assert link["master"] == names.bridge(vxnet["vni"]) and "UP" in link["flags"]
            deleted = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
            assert wait_operation(member, deleted["operation"]["id"], 120)["state"] == "succeeded"
