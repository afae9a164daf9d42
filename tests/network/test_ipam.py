"""IPAM: no address is ever handed out twice or lost, with 64 concurrent allocators (threads
and separate processes), and the pool behaves like a simple model under any sequence."""

import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.api import Api
from tests.support.network import sdn_zone
from yunguan.core import clock
from yunguan.core.ids import new_id
from yunguan.network import ipam
from yunguan.network.models import IpAddress

CHURN = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from yunguan.core.db import Database
from tests.network.test_ipam import churn
db = Database(sys.argv[1])
sys.stdin.readline()
with ThreadPoolExecutor(8) as pool:
    held = list(pool.map(lambda n: churn(db, sys.argv[2], f"{sys.argv[3]}-{n}"), range(8)))
print(json.dumps(held))
"""


def churn(db, pool_id: str, worker: str) -> dict[str, str]:
    """Allocate until the pool is empty, giving every third address back; returns what the
    worker still holds (owner -> address)."""
    held: dict[str, str] = {}
    for n in range(10_000):
        owner = f"{worker}-{n}"
        try:
            with db.session() as session:
                held[owner] = ipam.allocate(session, pool_id, owner)
        except ipam.PoolExhausted:
            return held
        if n % 3 == 2:
            with db.session() as session:
                gone = min(held)
                assert ipam.release(session, gone) == 1
                del held[gone]
    raise AssertionError("the pool never ran out")


def _pool(admin: Api, cidr: str, **fields) -> dict:
    """A guest pool of ``cidr``, on the one guest VLAN pool of the test's zone."""
    vlans = admin.ok(admin.get("/vlan-pools", params={"name": "guest"}))["items"]
    if not vlans:
        zone_id = sdn_zone(admin, hosts=1)["zone"]["id"]
        body = {"name": "guest", "zone_id": zone_id, "first_id": 1, "last_id": 4094}
        vlans = [admin.ok(admin.post("/vlan-pools", body), 201)]
    vlan = len(admin.ok(admin.get("/ip-pools", params={"limit": 1000}))["items"]) + 1
    ip_pool = {"name": new_id("guest"), "vlan_pool_id": vlans[0]["id"], "cidr": cidr}
    ip_pool |= {"vlan": vlan, **fields}  # a VLAN of its own: pools of one VLAN may not overlap
    return admin.ok(admin.post("/ip-pools", ip_pool), 201)


def test_64_concurrent_allocators_never_share_or_lose_an_address(admin: Api, db) -> None:
    pool = _pool(admin, "10.8.0.0/23", gateway="10.8.0.1")  # 509 addresses to hand out
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CHURN, db.url, pool["id"], f"p{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(4)
    ]
    for process in processes:
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
    with ThreadPoolExecutor(32) as threads:
        held = list(threads.map(lambda n: churn(db, pool["id"], f"t{n}"), range(32)))
    for process in processes:
        held += json.loads(process.communicate(timeout=300)[0])
    claimed = {owner: address for worker in held for owner, address in worker.items()}
    assert len(held) == 64
    counts = Counter(claimed.values())
    assert not [a for a, c in counts.items() if c > 1]  # nobody got an address twice
    with db.session(write=False) as session:
        rows = session.execute(
            select(IpAddress.owner_id, IpAddress.address).where(IpAddress.pool_id == pool["id"])
        ).all()
    owners = {owner: address for owner, address in rows if owner and not owner.startswith("__")}
    assert owners == claimed  # the database agrees with every allocator: nothing lost
    assert len(claimed) == 509  # the pool was drained completely
    figures = admin.ok(admin.get(f"/ip-pools/{pool['id']}"))["usage"]
    assert figures == {"total": 510, "used": 509, "reserved": 1, "cooling": 0, "free": 0}


def test_specific_reserved_and_cooling_addresses(admin: Api, db) -> None:
    pool = _pool(
        admin,
        "10.9.0.0/24",
        ranges=[["10.9.0.10", "10.9.0.19"]],
        reserved=[["10.9.0.10", "10.9.0.11"]],
        cooldown_seconds=60,
    )
    path = f"/ip-pools/{pool['id']}/addresses"
    first = admin.ok(admin.post(path, {"owner_id": "i-one"}), 201)
    assert first["address"] == "10.9.0.12"  # .10 and .11 are reserved
    chosen = admin.ok(admin.post(path, {"owner_id": "i-two", "address": "10.9.0.18"}), 201)
    assert chosen["owner_id"] == "i-two"
    for address, status, code in (
        ("10.9.0.18", 409, "address-in-use"),
        ("10.9.0.10", 409, "address-in-use"),  # reserved
        ("10.9.0.30", 400, "bad-address"),  # in the subnet, not in the ranges
        ("not-an-ip", 422, None),
    ):
        answer = admin.post(path, {"owner_id": "i-three", "address": address})
        assert answer.status_code == status and (code is None or answer.json()["code"] == code)
    admin.ok(admin.delete(f"{path}/10.9.0.12"), 204)
    assert admin.delete(f"{path}/10.9.0.12").status_code == 404
    assert admin.delete(f"{path}/10.9.0.10").json()["code"] == "reserved"
    cooling = admin.post(path, {"owner_id": "i-four", "address": "10.9.0.12"})
    assert (cooling.status_code, cooling.json()["code"]) == (409, "address-in-use")
    assert admin.ok(admin.get(f"/ip-pools/{pool['id']}"))["usage"]["cooling"] == 1
    later = clock.now() + timedelta(seconds=61)
    clock.set_clock(lambda: later)
    try:
        assert admin.ok(admin.post(path, {"owner_id": "i-four", "address": "10.9.0.12"}), 201)
    finally:
        clock.set_clock(None)


def test_ipv6_pools_and_bad_pools(admin: Api) -> None:
    pool = _pool(admin, "10.7.0.0/24")
    assert pool["usage"]["free"] == 254
    vlan_pool_id = pool["vlan_pool_id"]
    six = {"name": "v6", "vlan_pool_id": vlan_pool_id, "cidr": "2001:db8::/64"}
    six["ranges"] = [["2001:db8::100", "2001:db8::1ff"]]
    v6 = admin.ok(admin.post("/ip-pools", six), 201)
    assert v6["version"] == 6 and v6["usage"]["total"] == 256
    got = admin.ok(admin.post(f"/ip-pools/{v6['id']}/addresses", {"owner_id": "i-six"}), 201)
    assert got["address"] == "2001:db8::100"
    for body, code in (
        ({"cidr": "2001:db8::/64"}, "pool-too-large"),  # 2^64 addresses
        ({"cidr": "10.7.0.0/24", "ranges": [["10.7.0.9", "10.7.0.2"]]}, "bad-range"),
        ({"cidr": "10.7.0.0/24", "ranges": [["10.7.0.2", "10.7.1.9"]]}, "bad-range"),
        (
            {"cidr": "10.7.0.0/24", "ranges": [["10.7.0.2", "10.7.0.9"], ["10.7.0.5", "10.7.0.6"]]},
            "bad-range",
        ),
        ({"cidr": "10.7.0.0/24", "gateway": "10.8.0.1"}, "bad-gateway"),
        ({"cidr": "10.7.0.0/33"}, "bad-cidr"),
    ):
        answer = admin.post("/ip-pools", {"name": "bad", "vlan_pool_id": vlan_pool_id, **body})
        assert (answer.status_code, answer.json()["code"]) == (400, code), body
    same_vlan = {"name": "half", "vlan_pool_id": vlan_pool_id, "vlan": pool["vlan"]}
    overlapping = admin.post("/ip-pools", {**same_vlan, "cidr": "10.7.0.128/25"})
    assert (overlapping.status_code, overlapping.json()["code"]) == (409, "overlap")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["next", "pick", "release", "wait"]), st.integers(0, 11)),
        max_size=40,
    )
)
def test_the_pool_behaves_like_a_set_of_free_addresses(admin: Api, db, steps) -> None:
    """Against a reference model: 'next' takes the lowest free address; released ones cool
    down for 30 s and go back to the free set when the pool runs out; 'pick' takes a
    chosen address if it is free or has cooled down."""
    pool = _pool(admin, "10.77.0.0/28", cooldown_seconds=30)
    addresses = [f"10.77.0.{n}" for n in range(1, 15)]
    at = [clock.now()]
    clock.set_clock(lambda: at[0])
    free, cooling, held = set(range(len(addresses))), {}, {}  # positions
    try:
        for action, index in steps:
            owner = new_id("o")
            with db.session() as session:
                if action == "wait":
                    at[0] += timedelta(seconds=20)
                elif action == "release" and held:
                    gone = sorted(held)[index % len(held)]
                    assert ipam.release(session, gone) == 1
                    cooling[held.pop(gone)] = at[0] + timedelta(seconds=30)
                elif action == "next":
                    if not free:
                        free |= {p for p, t in cooling.items() if t <= at[0]}
                    expected = min(free) if free else None
                    try:
                        got = addresses.index(ipam.allocate(session, pool["id"], owner))
                    except ipam.PoolExhausted:
                        got = None
                    assert got == expected
                elif action == "pick":
                    expected = index % len(addresses)
                    ready = expected in free or cooling.get(expected, at[0] + timedelta(1)) <= at[0]
                    try:
                        got = addresses.index(
                            ipam.allocate(session, pool["id"], owner, addresses[expected])
                        )
                    except ipam.Conflict:
                        got = None
                    assert (got == expected) is ready
                if action in ("next", "pick") and got is not None:
                    held[owner] = got
                    free.discard(got)
                    cooling.pop(got, None)
                for position, _t in list(cooling.items()):  # what the pool returned itself
                    if position in free:
                        del cooling[position]
    finally:
        clock.set_clock(None)
