"""The admission arithmetic, apart from storage.

For a node n of one resource class (G guarantee, LL lend limit, BL borrow limit, Cap):

    T(n) = G(n) - sum over children G(c) - own_usage(n) + sum over children min(LL(c), T(c))

the slack of n's subtree: what it could still take (negative: what it borrows). For a leaf
it is G - usage. A claim q at x is admitted iff, afterwards, for x and every ancestor y,
T(y) >= -BL(y) (the root's BL is 0) and subtree usage U(y) <= Cap(y), and no node on the
path is over quota. Only the path's T values change with a claim at x, so admission reads
and writes one row per level.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

INF = 10**15  # "unlimited"; every stored value is clamped to +/-INF


def clamp(value: int) -> int:
    return max(-INF, min(INF, value))


def limit(value: int | None) -> int:
    return INF if value is None else value


class Node(Protocol):
    tenant_id: str
    guarantee: int | None
    lend_limit: int | None
    borrow_limit: int | None
    cap: int | None
    over_quota: bool
    lending_closed: bool
    subtree_usage: int
    slack: int
    parent_id: str | None


def floor_of(node: Node) -> int:
    """The lowest slack a node may have: minus what it may borrow (the root: 0)."""
    return 0 if node.parent_id is None else -limit(node.borrow_limit)


def contribution(node: Node, slack: int) -> int:
    """What a child adds to its parent's slack: its own, up to what it may lend."""
    return min(0 if node.lending_closed else limit(node.lend_limit), slack)


def guarantee(node: Node) -> int:
    """Unconfigured guarantees are 0, except the root's, which is unlimited."""
    if node.guarantee is None:
        return INF if node.parent_id is None else 0
    return node.guarantee


def slack(node: Node, own_usage: int, children: Sequence[Node]) -> int:
    """T(n) from its children's stored values (for configuration changes and reconcile)."""
    if node.parent_id is None and node.guarantee is None:
        return INF
    value = guarantee(node) - sum(guarantee(c) for c in children) - own_usage
    return clamp(value + sum(contribution(c, c.slack) for c in children))


@dataclass(frozen=True)
class Refusal:
    tenant_id: str
    reason: str


def admit(path: Sequence[Node], amount: int) -> tuple[list[tuple[int, int]], Refusal | None]:
    """Add ``amount`` at the last node of ``path`` (root first). Returns each node's new
    (slack, subtree usage), root first, and the first refusal met going up (or None)."""
    after: list[tuple[int, int]] = []
    refusal = None
    new_slack = None
    for depth in range(len(path) - 1, -1, -1):
        node = path[depth]
        if depth == len(path) - 1:
            new_slack = clamp(node.slack - amount)
        else:
            child = path[depth + 1]
            before, now = contribution(child, child.slack), contribution(child, after[0][0])
            new_slack = INF if node.slack >= INF else clamp(node.slack - before + now)
        usage = node.subtree_usage + amount
        after.insert(0, (new_slack, usage))
        if refusal is None and amount > 0:
            floor = floor_of(node)
            if node.over_quota:
                refusal = Refusal(node.tenant_id, "is over quota")
            elif new_slack < floor:
                refusal = Refusal(
                    node.tenant_id, f"would be {-new_slack} short (may borrow {-floor})"
                )
            elif usage > limit(node.cap):
                refusal = Refusal(node.tenant_id, f"would use {usage} of its cap {node.cap}")
    return after, refusal


def lent(parent: Node, own_usage: int, lent_out: int, children: Sequence[Node]) -> dict[str, int]:
    """How much of each child's idle guarantee others use. Lender-borrower pairs are not
    recorded, so this attributes: what the children borrow, plus what ``parent`` itself lends
    out (``lent_out``), is drawn first from the parent's unallocated pool, then from the
    children that can lend, in proportion to what each can lend."""
    lendable = {c.tenant_id: max(0, contribution(c, c.slack)) for c in children}
    offered = sum(lendable.values())
    if offered == 0 or guarantee(parent) >= INF:
        return {}
    pool = guarantee(parent) - sum(guarantee(c) for c in children) - own_usage
    borrowed = sum(max(0, c.subtree_usage - guarantee(c)) for c in children)
    taken = min(offered, max(0, borrowed + lent_out - pool))
    shares = {tenant: taken * amount // offered for tenant, amount in lendable.items()}
    rest = taken - sum(shares.values())
    for tenant in sorted(lendable, key=lambda t: (-(taken * lendable[t] % offered), t))[:rest]:
        shares[tenant] += 1
    return shares
