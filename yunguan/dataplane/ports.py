"""How a local port's device reaches its vxnet's bridge in the router namespace.

- ``tap``: a guest NIC of libvirt (``<interface type='ethernet'>`` with the port's device
  name): the agent moves the tap from the host namespace into the router's;
- ``netns``: a "netns VM" stands in for a guest (the simulator's instances, the tests): a
  namespace per port with the port's MAC and IP on ``eth0``, a veth to the bridge.
"""

from pyroute2 import IPRoute

from yunguan.dataplane import kernel, names
from yunguan.dataplane.desired import LocalPort


class Taps:
    """Taps the hypervisor makes in ``netns`` (None: the agent's own namespace)."""

    def __init__(self, namespaces: kernel.Namespaces, netns: str | None) -> None:
        self.ns = namespaces
        self.netns = netns

    def plug(self, router: IPRoute, router_netns: str, port: LocalPort) -> bool:
        host = self.ns(self.netns)
        at = kernel.index(host, port.device)
        if at is None:
            return False  # the guest is not started yet
        host.link("set", index=at, net_ns_fd=router_netns)
        return True


class NetnsVms:
    def __init__(self, namespaces: kernel.Namespaces) -> None:
        self.ns = namespaces

    def plug(self, router: IPRoute, router_netns: str, port: LocalPort) -> bool:
        vm_netns = names.vm_netns(port.port_id)
        if self.ns.ensure(vm_netns):
            kernel.sysctl(
                vm_netns,
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            )
        vm = self.ns(vm_netns)
        vm.link("set", index=1, state="up")
        previous = kernel.index(vm, names.VM_DEVICE)
        if previous is not None:  # its NIC on the host it came from: the VM moved here
            vm.link("del", index=previous)
        router.link(
            "add",
            ifname=port.device,
            kind="veth",
            peer={"ifname": names.VM_DEVICE, "net_ns_fd": vm_netns, "address": port.mac},
        )
        # the router's end first: a VM whose NIC came up without carrier would lose its
        # first ARP and wait a second for the retry
        bridge = kernel.index(router, port.bridge)
        router.link("set", index=kernel.index(router, port.device), master=bridge, state="up")
        nic = kernel.index(vm, names.VM_DEVICE)
        vm.link("set", index=nic, address=port.mac, state="up")
        vm.addr("add", index=nic, address=port.ip, prefixlen=port.prefix)
        vm.route("add", dst="0.0.0.0/0", gateway=port.gateway_ip)
        return True
