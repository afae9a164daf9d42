"""Names and derived addresses that the agent, the libvirt driver and the tests agree on.

Linux interface names have at most 15 characters, so objects named after ids use a short
digest of the id.
"""

import hashlib
import ipaddress

UPLINK = "uplink"  # a router's public side, in its namespace
EIP_TABLE = 100  # the routing table of ports with an EIP: out through the uplink
VM_DEVICE = "eth0"  # a netns VM's NIC


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=5).hexdigest()


def router_netns(prefix: str, vpc_id: str) -> str:
    """A VPC's router namespace on one host."""
    return f"{prefix}r-{vpc_id}"


def vm_netns(port_id: str) -> str:
    """The namespace of a "netns VM" (the simulator's stand-in for a guest): named after its
    port, not its host, so that it can move between hosts."""
    return f"vm-{port_id}"


def bridge(vni: int) -> str:
    return f"br{vni}"


def vxlan(vni: int) -> str:
    return f"vx{vni}"


def transit(vni: int) -> str:
    return f"tr{vni}"


def port_device(port_id: str) -> str:
    """A port's device on its vxnet's bridge: the veth of a netns VM, or the tap that
    libvirt creates for a guest NIC (the agent moves it into the router's namespace)."""
    return f"yp{_digest(port_id)}"


def uplink_peer(vpc_id: str) -> str:
    """The host-side end of a router's uplink, on the host's external bridge."""
    return f"yx{_digest(vpc_id)}"


def transit_mac(vtep: str) -> str:
    """A host router's own MAC on a transit segment (the anycast router MAC cannot tell
    hosts apart): derived from the host's VTEP address."""
    tail = ipaddress.ip_address(vtep).packed[-4:]
    return "02:79:" + ":".join(f"{b:02x}" for b in tail)


def transit_hop(index: int) -> str:
    """The next-hop address standing for the ``index``-th remote router on a transit
    segment; it is never configured anywhere, only resolved by a permanent neighbour."""
    return f"169.254.0.{index + 1}"
