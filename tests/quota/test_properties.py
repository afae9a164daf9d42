"""Random trees, limits and claims: admission matches a from-scratch reference, the caches
match the reservations, and the admission invariant holds after every step."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yunguan.core.ids import new_id
from yunguan.identity import service as identity
from yunguan.identity.schemas import TenantCreate
from yunguan.identity.scope import Principal
from yunguan.quota import engine, service
from yunguan.quota.models import QuotaNode
from yunguan.quota.schemas import QuotaChange

LIMIT = st.one_of(st.none(), st.integers(0, 12))
TREE = st.lists(st.integers(0, 5), min_size=1, max_size=6)  # parent index of node i+1
OPERATION = st.one_of(
    st.tuples(st.just("reserve"), st.integers(0, 6), st.integers(1, 9)),
    st.tuples(st.just("release"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("limit"), st.integers(0, 6), st.tuples(LIMIT, LIMIT, LIMIT)),
)


def reference(config: dict, parents: dict, usage: dict) -> dict[str, tuple[int, int]]:
    """(T, U) of every node, computed from nothing but the definitions."""
    children = {n: [c for c, p in parents.items() if p == n] for n in config}

    def g(n: str) -> int:
        return config[n]["guarantee"] or 0

    def walk(n: str) -> tuple[int, int]:
        below = [walk(c) for c in children[n]]
        u = usage.get(n, 0) + sum(b[1] for b in below)
        t = g(n) - sum(g(c) for c in children[n]) - usage.get(n, 0)
        t += sum(
            min(engine.limit(config[c]["lend_limit"]), b[0])
            for c, b in zip(children[n], below, strict=True)
        )
        values[n] = (t, u)
        return t, u

    values: dict[str, tuple[int, int]] = {}
    top = next(n for n, p in parents.items() if p is None)
    walk(top)
    return values


def holds(config: dict, values: dict) -> bool:
    return all(
        t >= -engine.limit(config[n]["borrow_limit"]) and u <= engine.limit(config[n]["cap"])
        for n, (t, u) in values.items()
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tree=TREE,
    limits=st.lists(st.tuples(LIMIT, LIMIT, LIMIT, LIMIT), min_size=7, max_size=7),
    operations=st.lists(OPERATION, max_size=25),
)
def test_admission_matches_the_definition(db, root_id, tree, limits, operations) -> None:
    admin = Principal("u-x", "x", root_id, f"/{root_id}/", frozenset({"platform-admin"}))
    with db.session() as session:
        top = identity.create_tenant(
            session, admin, TenantCreate(name=new_id("p"), parent_id=root_id)
        )
        ids, parents = [top.id], {top.id: None}
        for i, parent in enumerate(tree):
            parent_id = ids[min(parent, i)]
            child = identity.create_tenant(
                session, admin, TenantCreate(name=f"n{i}", parent_id=parent_id)
            )
            ids.append(child.id)
            parents[child.id] = parent_id
    config = {}
    for n, tenant_id in enumerate(ids):  # top-down; a limit that does not fit stays unset
        g, lend, borrow, cap = limits[n]
        change = {"guarantee": g, "lend_limit": lend, "borrow_limit": borrow, "cap": cap}
        given = {k: v for k, v in change.items() if v is not None or k != "guarantee"}
        try:
            with db.session() as session:
                service.configure(session, admin, tenant_id, QuotaChange(resource="vcpus", **given))
            config[tenant_id] = change
        except service.Conflict:
            config[tenant_id] = dict.fromkeys(change)
    usage: dict[str, int] = {}
    held: list[tuple[str, str, int]] = []
    for kind, a, amount in operations:
        if kind == "reserve":
            tenant_id = ids[a % len(ids)]
            after = dict(usage, **{tenant_id: usage.get(tenant_id, 0) + amount})
            admissible = holds(config, reference(config, parents, after))
            try:
                with db.session() as session:
                    reservation = service.reserve(session, tenant_id, {"vcpus": amount})
                held.append((reservation.id, tenant_id, amount))
                usage = after
                admitted = True
            except service.QuotaExceeded:
                admitted = False
            assert admitted == admissible, (kind, tenant_id, amount)
        elif kind == "limit":  # a change that would make today's usage too much is refused
            tenant_id = ids[a % len(ids)]
            change = dict(zip(("lend_limit", "borrow_limit", "cap"), amount, strict=True))
            try:
                with db.session() as session:
                    service.configure(
                        session, admin, tenant_id, QuotaChange(resource="vcpus", **change)
                    )
                config[tenant_id] = {**config[tenant_id], **change}
            except (service.Conflict, service.BadRequest):
                pass
        elif held:
            reservation_id, tenant_id, amount = held.pop(a % len(held))
            with db.session() as session:
                service.release(session, reservation_id)
            usage[tenant_id] -= amount
        values = reference(config, parents, usage)
        assert holds(config, values)
        with db.session(write=False) as session:
            stored = {
                n.tenant_id: (n.slack, n.subtree_usage)
                for n in session.query(QuotaNode).filter(QuotaNode.tenant_id.in_(ids))
            }
        # a tenant without a row was never configured nor used: slack 0, usage 0
        assert {n: stored.get(n, (0, 0)) for n in ids} == values
    for reservation_id, _, _ in held:
        with db.session() as session:
            service.release(session, reservation_id)
    with db.session() as session:
        assert service.reconcile(session) == 0
