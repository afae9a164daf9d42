"""A VPC router's nftables table: EIP NAT, security groups and the learning sets.

The table lives in the router's namespace, so its conntrack keeps the overlapping private
addresses of different VPCs apart. Bridged traffic passes the ``forward`` hook too
(``bridge-nf-call-iptables`` is set in the namespace), so a security group filters traffic
between two VMs of one vxnet on one host like any other.

Security groups: a port in no group is not filtered. A port in groups accepts what a rule
of them allows, in each direction, and replies to it; anything else is dropped.
"""

from typing import Any

TABLE = "yunguan"
REACHED = "reached"  # destinations sent to a gateway host: to be learned
ACTIVE = "active"  # learned destinations still in use: to be kept
SET_TIMEOUT_SECONDS = 60


def ruleset(
    vpc: dict[str, Any], groups: dict[str, list], *, transit: str | None, learning: bool
) -> str:
    """The table, as a script that replaces it atomically (``nft -f``)."""
    filtered = [p for p in vpc["local_ports"] if p["security_group_ids"]]
    lines = [f"table ip {TABLE} {{"]
    for name in (REACHED, ACTIVE):
        lines.append(
            f"  set {name} {{ type ipv4_addr; flags dynamic,timeout; "
            f"timeout {SET_TIMEOUT_SECONDS}s; }}"
        )
    learned = sorted(entry["ip"] for entry in vpc["remote_ports"]) if learning else []
    lines.append(f"  set learned {{ type ipv4_addr; {_elements(learned)}}}")
    lines += _nat(vpc)
    lines.append("  chain forward {")
    lines.append("    type filter hook forward priority filter; policy accept;")
    if learning and transit:
        lines.append(
            f'    oifname "{transit}" ip daddr {vpc["cidr"]} update @{REACHED} {{ ip daddr }}'
        )
    if learned:
        lines.append(f"    ip daddr @learned update @{ACTIVE} {{ ip daddr }}")
    if filtered:
        lines.append("    ct state established,related accept")
        lines.append("    ct state invalid drop")
    for index, port in enumerate(filtered):
        lines.append(f"    ip saddr {port['ip']} jump egress_{index}")
        lines.append(f"    ip daddr {port['ip']} jump ingress_{index}")
    lines.append("  }")
    for index, port in enumerate(filtered):
        rules = [r for g in port["security_group_ids"] for r in groups.get(g, [])]
        for direction in ("ingress", "egress"):
            lines.append(f"  chain {direction}_{index} {{")
            matches = [_match(r, direction) for r in rules]
            lines += [f"    {m} return".replace("     ", "    ") for m in matches if m is not None]
            lines.append("    drop")
            lines.append("  }")
    lines.append("}")
    # declaring the table first makes the delete valid when it does not exist yet
    return f"table ip {TABLE}\ndelete table ip {TABLE}\n" + "\n".join(lines) + "\n"


def _elements(addresses: list[str]) -> str:
    return f"elements = {{ {', '.join(addresses)} }}; " if addresses else ""


def _nat(vpc: dict[str, Any]) -> list[str]:
    nat = [(p["ip"], p["eip"]["address"]) for p in vpc["local_ports"] if p.get("eip")]
    snat = vpc.get("snat")
    pre = [f"    ip daddr {public} dnat to {private}" for private, public in nat]
    post = [f'    oifname "uplink" ip saddr {private} snat to {public}' for private, public in nat]
    if snat:
        post.append(f'    oifname "uplink" ip saddr {vpc["cidr"]} snat to {snat["address"]}')
    return [
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        *pre,
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *post,
        "  }",
    ]


def _match(rule: dict[str, Any], direction: str) -> str | None:
    """The match of one security-group rule in one direction; None when it allows nothing
    (another direction, or a remote group without members)."""
    if rule["direction"] != direction:
        return None
    peer = "saddr" if direction == "ingress" else "daddr"
    parts = []
    if rule.get("remote_group_id"):
        if not rule.get("remote_ips"):
            return None
        parts.append(f"ip {peer} {{ {', '.join(rule['remote_ips'])} }}")
    elif rule.get("remote_cidr"):
        parts.append(f"ip {peer} {rule['remote_cidr']}")
    protocol = rule.get("protocol", "any")
    if protocol != "any":
        parts.append(f"meta l4proto {protocol}")
    if protocol in ("tcp", "udp") and rule.get("port_min") is not None:
        low, high = rule["port_min"], rule["port_max"]
        parts.append(f"{protocol} dport {low}" if low == high else f"{protocol} dport {low}-{high}")
    return " ".join(parts)  # empty: everything
