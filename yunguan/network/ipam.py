"""IP address management over ``ip_addresses``: every address of a pool is a row; free rows
form the pool's free list through a partial index ordered by (free_after, position).

- Allocation is one ``UPDATE … WHERE position = (first free row … FOR UPDATE SKIP LOCKED)
  RETURNING``: concurrent allocators on PostgreSQL take different rows without waiting for
  each other; SQLite serialises writers anyway. Never-used addresses go first, in order,
  then released ones, oldest release first, once their cool-down is over.
- A specific address is one conditional ``UPDATE``.
- Releasing sets ``owner_id`` back to null and ``free_after`` to now + the pool's cool-down.
"""

import ipaddress
import itertools
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.errors import BadRequest, Conflict
from yunguan.network.models import IpAddress, IpPool

MAX_POOL_SIZE = 65_536
# owners of addresses nobody may be given
RESERVED, GATEWAY = "__reserved", "__gateway"


class PoolExhausted(Conflict):
    code, title = "pool-exhausted", "No free address"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network(cidr: str) -> Network:
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise BadRequest(f"'{cidr}' is not a network address with a prefix: {exc}", code="bad-cidr")


def address(value: str) -> Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(f"'{value}' is not an IP address", code="bad-address")


def text(net: Network, number: int) -> str:
    """The address ``number`` in the notation of ``net``'s family."""
    kind = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    return str(kind(number))


def parse_ranges(net: Network, ranges: Sequence[Sequence[str]], what: str) -> list[tuple[int, int]]:
    """Validated [first, last] address pairs inside ``net``, as sorted integer pairs that do
    not overlap."""
    pairs = []
    for first_text, last_text in ranges:
        first, last = address(first_text), address(last_text)
        if first not in net or last not in net:
            raise BadRequest(f"{what} {first}-{last} is not inside {net}", code="bad-range")
        if int(first) > int(last):
            raise BadRequest(f"{what} {first}-{last} ends before it starts", code="bad-range")
        pairs.append((int(first), int(last)))
    pairs.sort()
    for (_, last), (first, _) in itertools.pairwise(pairs):
        if first <= last:
            raise BadRequest(f"{what}s overlap", code="bad-range")
    return pairs


def host_range(net: Network) -> list[tuple[int, int]]:
    """Every address of ``net`` but the network and broadcast addresses (IPv4 above /31)."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:
        first, last = first + 1, last - 1
    return [(first, last)]


def _rows(
    pool_id: str, net: Network, ranges: list[tuple[int, int]], taken: dict[int, str]
) -> Iterator[dict[str, Any]]:
    position = 0
    for first, last in ranges:
        for number in range(first, last + 1):
            yield {
                "pool_id": pool_id,
                "position": position,
                "address": text(net, number),
                "owner_id": taken.get(number),
            }
            position += 1


def materialize(
    session: Session, pool: IpPool, ranges: list[tuple[int, int]], taken: dict[int, str]
) -> int:
    """Insert a row for every address of ``ranges``; ``taken`` maps addresses to owners
    (gateway, reserved). Returns the pool's size."""
    size = sum(last - first + 1 for first, last in ranges)
    if size > MAX_POOL_SIZE:
        raise BadRequest(
            f"a pool holds at most {MAX_POOL_SIZE} addresses ({size} asked)", code="pool-too-large"
        )
    rows = _rows(pool.id, network(pool.cidr), ranges, taken)
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 5000:
            session.execute(insert(IpAddress), batch)
            batch = []
    if batch:
        session.execute(insert(IpAddress), batch)
    return size


def _first_free(pool_id: str):
    return (
        select(IpAddress.position)
        .where(
            IpAddress.pool_id == pool_id,
            IpAddress.owner_id.is_(None),
            IpAddress.free_after <= now(),
        )
        .order_by(IpAddress.free_after, IpAddress.position)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


def allocate(session: Session, pool_id: str, owner_id: str, wanted: str | None = None) -> str:
    """An address of the pool for ``owner_id``: ``wanted`` if given and free, else the next
    free one."""
    stmt = update(IpAddress).where(IpAddress.pool_id == pool_id, IpAddress.owner_id.is_(None))
    if wanted is None:
        stmt = stmt.where(IpAddress.position == _first_free(pool_id))
    else:
        chosen = str(address(wanted))
        stmt = stmt.where(IpAddress.address == chosen, IpAddress.free_after <= now())
    got = session.execute(
        stmt.values(owner_id=owner_id).returning(IpAddress.address)
    ).scalar_one_or_none()
    if got is not None:
        return got
    if wanted is None:
        raise PoolExhausted(f"ip pool {pool_id} has no free address")
    holder = session.execute(
        select(IpAddress.owner_id, IpAddress.free_after).where(
            IpAddress.pool_id == pool_id, IpAddress.address == chosen
        )
    ).one_or_none()
    if holder is None:
        raise BadRequest(f"{chosen} is not an address of ip pool {pool_id}", code="bad-address")
    reason = "is cooling down" if holder.owner_id is None else "is in use"
    raise Conflict(f"{chosen} {reason}", code="address-in-use")


def release(
    session: Session, owner_id: str, *, pool_id: str | None = None, address: str | None = None
) -> int:
    """Give back the addresses ``owner_id`` holds (in one pool, or just one address); they
    return after their pool's cool-down."""
    held = [IpAddress.owner_id == owner_id]
    if pool_id is not None:
        held.append(IpAddress.pool_id == pool_id)
    if address is not None:
        held.append(IpAddress.address == address)
    pools = select(IpAddress.pool_id).where(*held).distinct()
    released = 0
    for pool in session.scalars(select(IpPool).where(IpPool.id.in_(pools))):
        cooled = now() + timedelta(seconds=pool.cooldown_seconds)
        released += session.execute(
            update(IpAddress)
            .where(IpAddress.pool_id == pool.id, *held)
            .values(owner_id=None, free_after=cooled)
        ).rowcount  # type: ignore[attr-defined]
    return released


def usage(session: Session, pool_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per pool: total, used, reserved (incl. gateways), cooling and free addresses."""
    at = now()
    owner = IpAddress.owner_id
    counted = session.execute(
        select(
            IpAddress.pool_id,
            func.count(),
            func.count(owner) - func.count(case((owner.startswith("__", autoescape=True), 1))),
            func.count(case((owner.startswith("__", autoescape=True), 1))),
            func.count(case((owner.is_(None) & (IpAddress.free_after > at), 1))),
        )
        .where(IpAddress.pool_id.in_(pool_ids))
        .group_by(IpAddress.pool_id)
    )
    figures = {p: {"total": 0, "used": 0, "reserved": 0, "cooling": 0} for p in pool_ids}
    for pool_id, total, used, reserved, cooling in counted:
        figures[pool_id] = {"total": total, "used": used, "reserved": reserved, "cooling": cooling}
    for numbers in figures.values():
        numbers["free"] = numbers["total"] - numbers["used"] - numbers["reserved"]
        numbers["free"] -= numbers["cooling"]
    return figures
