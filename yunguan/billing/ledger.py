"""The double-entry ledger: every money movement is one transaction of entries that add
up to zero per currency (a debit is positive), posted once per reference.

A customer's ledger accounts belong to its billing account (``owner_id``): what it owes
(``receivable``, a debit balance), its wallets (``cash_wallet``, ``credit_wallet``: what the
platform holds for it, credit balances) and ``prepaid_clearing`` (what prepaid charges took
ahead of the invoice). The platform's (``owner_id`` "platform"): ``revenue``,
``tax_payable``, ``promotions`` (granted credit), ``bank_clearing`` (money received).
"""

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from yunguan.core.clock import now
from yunguan.core.db import bulk_insert, chunked, insert_into
from yunguan.core.ids import new_id

PLATFORM = "platform"

Entry = tuple[str, str, str, Decimal]
"""``(owner_id, code, currency, amount)``: a debit is positive, a credit negative."""


def post(
    session: Session,
    reference: str,
    kind: str,
    entries: list[Entry],
    *,
    account_id: str | None = None,
    tenant_path: str = "",
    invoice_id: str | None = None,
) -> None:
    """Post ``entries`` as one transaction, unless ``reference`` was posted already or
    nothing moves (then nothing happens). Zero entries are left out. ValueError if they do
    not balance: that is a bug, not bad input. Inside ``deferred`` the posting waits for the
    batch."""
    entries = [entry for entry in entries if entry[3]]
    if not entries:
        return
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for _, _, currency, amount in entries:
        totals[currency] += amount
    if any(totals.values()):
        raise ValueError(f"unbalanced ledger transaction {reference}: {dict(totals)}")
    row = {
        "id": new_id("ltx"),
        "reference": reference,
        "kind": kind,
        "account_id": account_id,
        "tenant_path": tenant_path,
        "invoice_id": invoice_id,
        "at": now(),
    }
    batch = session.info.get(_BATCH)
    if batch is not None:
        batch.setdefault(reference, (row, entries))
    else:
        _post_all(session, {reference: (row, entries)})


_BATCH = "ledger_batch"


@contextmanager
def deferred(session: Session) -> Iterator[None]:
    """Post what is posted inside in one go at the end (a few statements for thousands of
    transactions). Reads inside do not see it: only for postings that do not read each
    other's effects, such as one invoice per account at month end."""
    session.info[_BATCH] = {}
    try:
        yield
        _post_all(session, session.info[_BATCH])
    finally:
        session.info.pop(_BATCH, None)


def _post_all(session: Session, postings: dict[str, tuple[dict, list[Entry]]]) -> None:
    if not postings:
        return
    statement = insert_into(session, LedgerTransaction).on_conflict_do_nothing()
    rows = [row for row, _ in postings.values()]
    new = set(session.scalars(statement.returning(LedgerTransaction.reference), rows))
    posted = [(row["id"], entries) for ref, (row, entries) in postings.items() if ref in new]
    keys = {(owner, code, cur) for _, entries in posted for owner, code, cur, _ in entries}
    accounts = _accounts(session, keys)
    lines, moved = [], defaultdict(Decimal)
    for transaction_id, entries in posted:
        for owner, code, currency, amount in entries:
            account = accounts[(owner, code, currency)]
            lines.append(
                {
                    "transaction_id": transaction_id,
                    "ledger_account_id": account.id,
                    "amount": amount,
                }
            )
            moved[account.id] += amount
    bulk_insert(session, LedgerEntry, lines)
    for account in accounts.values():
        account.balance += moved[account.id]
    session.flush()


def _accounts(
    session: Session, keys: set[tuple[str, str, str]]
) -> dict[tuple[str, str, str], LedgerAccount]:
    """The ledger accounts of ``keys``, made if missing, locked in one order (no deadlock)."""
    if not keys:
        return {}
    rows = [
        {"id": new_id("la"), "owner_id": o, "code": c, "currency": cur}
        for o, c, cur in sorted(keys)
    ]
    session.execute(insert_into(session, LedgerAccount).on_conflict_do_nothing(), rows)
    found = {}
    for owners in chunked(sorted({owner for owner, _, _ in keys})):
        stmt = (
            select(LedgerAccount)
            .where(LedgerAccount.owner_id.in_(owners))
            .order_by(LedgerAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found.update({(a.owner_id, a.code, a.currency): a for a in session.scalars(stmt)})
    return {key: found[key] for key in keys}


def balances(session: Session, owner_id: str, currency: str) -> dict[str, Decimal]:
    """The balances of an owner's ledger accounts in ``currency``, by code."""
    stmt = select(LedgerAccount.code, LedgerAccount.balance).where(
        LedgerAccount.owner_id == owner_id, LedgerAccount.currency == currency
    )
    return {code: Decimal(balance) for code, balance in session.execute(stmt)}


def posted_on(session: Session, invoice_ids: list[str], owner_id: str, code: str) -> Decimal:
    """What the transactions of these invoices moved on one ledger account."""
    stmt = (
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.ledger_account_id)
        .where(
            LedgerTransaction.invoice_id.in_(invoice_ids),
            LedgerAccount.owner_id == owner_id,
            LedgerAccount.code == code,
        )
    )
    return Decimal(session.scalar(stmt))


def audit(session: Session) -> list[str]:
    """What is wrong with the ledger: a transaction whose entries do not add up to zero, or
    a cached balance that is not the sum of its account's entries. Empty when all is well."""
    problems = []
    exact = func.round(func.sum(LedgerEntry.amount), 10)  # SQLite sums in floating point
    unbalanced = select(LedgerEntry.transaction_id).group_by(LedgerEntry.transaction_id)
    unbalanced = unbalanced.having(exact != 0)
    problems += [f"transaction {t} does not balance" for t in session.scalars(unbalanced)]
    sums = (
        select(LedgerAccount.id, LedgerAccount.balance, func.coalesce(exact, 0))
        .outerjoin(LedgerEntry, LedgerEntry.ledger_account_id == LedgerAccount.id)
        .group_by(LedgerAccount.id, LedgerAccount.balance)
    )
    problems += [
        f"account {a} caches {cached}, its entries add up to {total}"
        for a, cached, total in session.execute(sums)
        if round(Decimal(cached), 10) != round(Decimal(str(total)), 10)
    ]
    return problems
