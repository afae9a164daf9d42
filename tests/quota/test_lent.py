"""The attributed ``lent`` figure: borrowing is charged to the parent's pool first, then to
the children that can lend, in proportion, level by level from the root down."""

from hypothesis import given
from hypothesis import strategies as st

from yunguan.quota import engine


class Row:
    def __init__(self, tenant_id, guarantee, usage, *, parent="p", lend_limit=None) -> None:
        self.tenant_id, self.parent_id, self.guarantee = tenant_id, parent, guarantee
        self.subtree_usage, self.slack = usage, guarantee - usage
        self.lend_limit, self.borrow_limit, self.cap = lend_limit, None, None
        self.over_quota = self.lending_closed = False


def test_the_pool_covers_borrowing_before_any_sibling_lends() -> None:
    parent = Row("p", 20, 13, parent=None)
    kids = [Row("a", 8, 12), Row("b", 8, 1)]
    assert engine.lent(parent, 0, 0, kids) == {"a": 0, "b": 0}  # pool of 4 covers a's 4
    kids[0] = Row("a", 8, 14)
    assert engine.lent(parent, 0, 0, kids) == {"a": 0, "b": 2}


def test_lenders_are_charged_in_proportion_to_what_they_may_lend() -> None:
    parent = Row("p", 24, 0, parent=None)
    kids = [Row("a", 8, 13), Row("b", 8, 0), Row("c", 8, 4, lend_limit=2)]
    # a borrows 5; b may lend 8 and c 2: 5 split 8:2 -> 4, 1
    assert engine.lent(parent, 0, 0, kids) == {"a": 0, "b": 4, "c": 1}
    # what the parent lends out is charged to its children too
    assert engine.lent(parent, 0, 5, kids) == {"a": 0, "b": 8, "c": 2}


@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 30)), min_size=1, max_size=6),
    st.integers(0, 10),
    st.integers(0, 10),
)
def test_nobody_is_charged_more_than_it_may_lend_and_charges_add_up(kids, pool, lent_out):
    rows = [Row(f"t{i}", g, u) for i, (g, u) in enumerate(kids)]
    parent = Row("p", sum(g for g, _ in kids) + pool, 0, parent=None)
    shares = engine.lent(parent, 0, lent_out, rows)
    lendable = {r.tenant_id: max(0, r.slack) for r in rows}
    assert all(shares.get(t, 0) <= amount for t, amount in lendable.items())
    need = sum(max(0, u - g) for g, u in kids) + lent_out - pool
    assert sum(shares.values()) == min(sum(lendable.values()), max(0, need))
