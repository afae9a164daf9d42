"""IP address management. Every address of a pool is a row of ``ip_addresses`` (who holds
it); the free list is ``ip_chunks``, a 256-bit bitmap per 256 consecutive addresses.

- Allocating locks the first chunk with a free bit (``FOR UPDATE SKIP LOCKED``: concurrent
  allocators on PostgreSQL each take another chunk instead of waiting; SQLite serialises
  writers anyway), clears its lowest bit and sets the owner of that one address. Cost does
  not grow with the pool's fill: no scan over taken addresses, no retry.
- A specific address locks its chunk and checks that address.
- Releasing clears the owner; without a cool-down the bit is set again at once, with one the
  address is ``cooling`` until ``free_after``. Cooled addresses go back into the bitmaps when
  a pool runs out and on the periodic housekeeping pass.
- Every path locks a chunk before an address row, so concurrent callers never deadlock.
"""

import ipaddress
import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.errors import BadRequest, Conflict
from yunguan.network.models import IpAddress, IpChunk, IpPool

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


CHUNK = 256


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


def _insert(session: Session, model: Any, rows: Iterable[dict[str, Any]]) -> None:
    remaining = iter(rows)
    while batch := list(itertools.islice(remaining, 5000)):
        session.execute(insert(model), batch)


def materialize(
    session: Session, pool: IpPool, ranges: list[tuple[int, int]], taken: dict[int, str]
) -> int:
    """Insert a row for every address of ``ranges`` and the bitmaps of the free ones;
    ``taken`` maps addresses to owners (gateway, reserved). Returns the pool's size."""
    size = sum(last - first + 1 for first, last in ranges)
    if size > MAX_POOL_SIZE:
        raise BadRequest(
            f"a pool holds at most {MAX_POOL_SIZE} addresses ({size} asked)", code="pool-too-large"
        )
    rows = list(_rows(pool.id, network(pool.cidr), ranges, taken))
    _insert(session, IpAddress, rows)
    bitmaps = [0] * -(-size // CHUNK)
    for row in rows:
        if row["owner_id"] is None:
            bitmaps[row["position"] // CHUNK] |= 1 << (row["position"] % CHUNK)
    chunks = (
        {"pool_id": pool.id, "chunk": n, "free": bits.bit_count(), "bits": _bytes(bits)}
        for n, bits in enumerate(bitmaps)
    )
    _insert(session, IpChunk, chunks)
    return size


def _bytes(bits: int) -> bytes:
    return bits.to_bytes(CHUNK // 8, "little")


# The hot path runs as Core statements on the session's connection: ORM bookkeeping would
# cost more than the database work.
_CHUNK_BITS = select(IpChunk.bits).where(
    IpChunk.pool_id == bindparam("pool"), IpChunk.chunk == bindparam("at_chunk")
)
_FIRST_FREE = (
    select(IpChunk.chunk, IpChunk.bits)
    .where(IpChunk.pool_id == bindparam("pool"), IpChunk.free > 0)
    .order_by(IpChunk.chunk)
    .limit(1)
)
_FREE_CHUNKS = select(IpChunk.chunk).where(IpChunk.pool_id == bindparam("pool"), IpChunk.free > 0)
_STORE = (
    update(IpChunk)
    .where(IpChunk.pool_id == bindparam("pool"), IpChunk.chunk == bindparam("at_chunk"))
    .values(bits=bindparam("new_bits"), free=bindparam("new_free"))
)
_HOLD = (
    update(IpAddress)
    .where(IpAddress.pool_id == bindparam("pool"), IpAddress.position == bindparam("at_position"))
    .values(owner_id=bindparam("owner"), cooling=False)
    .returning(IpAddress.address)
)


def _lock_chunk(conn: Connection, pool_id: str, chunk: int) -> int:
    bits = conn.execute(_CHUNK_BITS.with_for_update(), {"pool": pool_id, "at_chunk": chunk})
    return int.from_bytes(bits.scalar_one(), "little")


def _store(conn: Connection, pool_id: str, chunk: int, bits: int) -> None:
    values = {
        "pool": pool_id,
        "at_chunk": chunk,
        "new_bits": _bytes(bits),
        "new_free": bits.bit_count(),
    }
    conn.execute(_STORE, values)


def _free_chunk(conn: Connection, pool_id: str) -> tuple[int, int] | None:
    """(chunk, bits) of the first chunk with a free bit that nobody else has locked. When
    others hold every such chunk, wait for one of them picked at random (so waiters spread
    out), and look again if it filled meanwhile."""
    params = {"pool": pool_id}
    found = conn.execute(_FIRST_FREE.with_for_update(skip_locked=True), params).first()
    while found is None:
        candidates = conn.execute(_FREE_CHUNKS, params).scalars().all()
        if not candidates:
            return None
        chunk = random.choice(candidates)
        bits = _lock_chunk(conn, pool_id, chunk)
        if bits:
            return chunk, bits
    return found.chunk, int.from_bytes(found.bits, "little")


def _hold(conn: Connection, pool_id: str, position: int, owner_id: str) -> str:
    values = {"pool": pool_id, "at_position": position, "owner": owner_id}
    return conn.execute(_HOLD, values).scalar_one()


def allocate(session: Session, pool_id: str, owner_id: str, wanted: str | None = None) -> str:
    """An address of the pool for ``owner_id``: ``wanted`` if given and free, else the
    lowest free one of the first chunk nobody else is allocating from."""
    conn = session.connection()
    if wanted is not None:
        return _allocate_address(conn, pool_id, owner_id, str(address(wanted)))
    found = _free_chunk(conn, pool_id)
    if found is None and return_cooled(session, pool_id):
        found = _free_chunk(conn, pool_id)
    if found is None:
        raise PoolExhausted(f"ip pool {pool_id} has no free address")
    chunk, bits = found
    offset = (bits & -bits).bit_length() - 1
    _store(conn, pool_id, chunk, bits & ~(1 << offset))
    return _hold(conn, pool_id, chunk * CHUNK + offset, owner_id)


def _allocate_address(conn: Connection, pool_id: str, owner_id: str, chosen: str) -> str:
    where = (IpAddress.pool_id == pool_id, IpAddress.address == chosen)
    position = conn.execute(select(IpAddress.position).where(*where)).scalar()
    if position is None:
        raise BadRequest(f"{chosen} is not an address of ip pool {pool_id}", code="bad-address")
    chunk = position // CHUNK
    bits = _lock_chunk(conn, pool_id, chunk)
    row = conn.execute(select(IpAddress.owner_id, IpAddress.free_after).where(*where)).one()
    if row.owner_id is not None or row.free_after > now():
        reason = "is in use" if row.owner_id is not None else "is cooling down"
        raise Conflict(f"{chosen} {reason}", code="address-in-use")
    _store(conn, pool_id, chunk, bits & ~(1 << position % CHUNK))  # a cooled one has no bit
    return _hold(conn, pool_id, position, owner_id)


def release(
    session: Session, owner_id: str, *, pool_id: str | None = None, address: str | None = None
) -> int:
    """Give back the addresses ``owner_id`` holds (in one pool, or just one address); they
    are free again at once, or after their pool's cool-down."""
    conn = session.connection()
    held = [IpAddress.owner_id == owner_id]
    if pool_id is not None:
        held.append(IpAddress.pool_id == pool_id)
    if address is not None:
        held.append(IpAddress.address == address)
    rows = conn.execute(select(IpAddress.pool_id, IpAddress.position).where(*held)).all()
    cooldowns = dict(
        conn.execute(
            select(IpPool.id, IpPool.cooldown_seconds).where(IpPool.id.in_({r[0] for r in rows}))
        ).all()
    )
    for pool, position in sorted(rows):
        chunk, cooldown = position // CHUNK, cooldowns[pool]
        bits = _lock_chunk(conn, pool, chunk)
        conn.execute(
            update(IpAddress)
            .where(IpAddress.pool_id == pool, IpAddress.position == position)
            .values(
                owner_id=None,
                cooling=cooldown > 0,
                free_after=now() + timedelta(seconds=cooldown),
            )
        )
        if not cooldown:
            _store(conn, pool, chunk, bits | (1 << position % CHUNK))
    return len(rows)


def return_cooled(session: Session, pool_id: str | None = None) -> int:
    """Put addresses whose cool-down is over back into their bitmaps (one pool, or all)."""
    conn = session.connection()
    cooled = select(IpAddress.pool_id, IpAddress.position).where(
        IpAddress.cooling, IpAddress.free_after <= now()
    )
    if pool_id is not None:
        cooled = cooled.where(IpAddress.pool_id == pool_id)
    by_chunk: dict[tuple[str, int], list[int]] = {}
    for pool, position in conn.execute(cooled):
        by_chunk.setdefault((pool, position // CHUNK), []).append(position)
    returned = 0
    for (pool, chunk), positions in sorted(by_chunk.items()):
        bits = _lock_chunk(conn, pool, chunk)
        back = conn.execute(  # under the lock: someone may have taken one meanwhile
            update(IpAddress)
            .where(
                IpAddress.pool_id == pool,
                IpAddress.position.in_(positions),
                IpAddress.cooling,
                IpAddress.owner_id.is_(None),
            )
            .values(cooling=False)
            .returning(IpAddress.position)
        ).scalars()
        for position in back:
            bits |= 1 << position % CHUNK
            returned += 1
        _store(conn, pool, chunk, bits)
    return returned


def usage(session: Session, pool_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per pool: total, used, reserved (incl. gateways), cooling and free addresses."""
    owner = IpAddress.owner_id
    counted = session.execute(
        select(
            IpAddress.pool_id,
            func.count(),
            func.count(owner) - func.count(case((owner.startswith("__", autoescape=True), 1))),
            func.count(case((owner.startswith("__", autoescape=True), 1))),
            func.count(case((owner.is_(None) & IpAddress.cooling, 1))),
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
