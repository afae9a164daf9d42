"""Wallets and payments: money in (top-ups, granted credit, invoice payments, recorded once
per reference), money out (prepaid charges through the month, invoices settled when they
are finalized), and what an account may still order.

A prepaid account pays as it goes: each rating of its draft charges the difference from
what was charged before, granted credit first, then cash (which may go below zero). Below
zero the account is suspended: nothing new may be ordered until a top-up, and the hourly
run stops its resources, then releases them after the retention period (``jobs``). A postpaid
account pays its finalized invoices, from its wallets first; it may owe up to its credit
limit.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.billing import ledger, rating
from yunguan.billing.ledger import PLATFORM
from yunguan.billing.models import BillingAccount, Invoice, Payment
from yunguan.billing.money import round_minor
from yunguan.core.clock import now
from yunguan.core.db import locked
from yunguan.core.errors import Conflict, PaymentRequired
from yunguan.core.ids import new_id
from yunguan.identity.models import User
from yunguan.identity.roles import TENANT_ADMIN
from yunguan.notifications import service as notifications

LOW_BALANCE_HOURS = 24


def balances(session: Session, account: BillingAccount) -> tuple[Decimal, Decimal]:
    """The account's cash and granted credit (what the platform holds for it)."""
    held = ledger.balances(session, account.id, account.currency)
    return -held.get("cash_wallet", Decimal(0)), -held.get("credit_wallet", Decimal(0))


def _entries(account: BillingAccount, *moves: tuple[str, str, Decimal]) -> list[ledger.Entry]:
    """Ledger entries of ``(owner, code, amount)`` moves in the account's currency, where
    owner "" is the account."""
    return [(owner or account.id, code, account.currency, amount) for owner, code, amount in moves]


def _post(
    session: Session, account: BillingAccount, reference: str, kind: str, *moves, invoice_id=None
) -> None:
    ledger.post(
        session,
        reference,
        kind,
        _entries(account, *moves),
        account_id=account.id,
        tenant_path=account.tenant_path,
        invoice_id=invoice_id,
    )


# --- money in ---------------------------------------------------------------------------------


def receive(
    session: Session,
    account: BillingAccount,
    kind: str,
    amount: Decimal,
    reference: str,
    method: str = "",
    invoice: Invoice | None = None,
) -> Payment:
    """Record money received (``top-up``, ``payment`` of ``invoice``) or credit granted
    (``grant``) once per reference: the same again answers the first; the same reference
    with another amount or purpose is a conflict. The account is locked first, so two
    requests with one reference at once are one after the other: the second finds the
    first's payment (without the lock both would insert it, and one would fail)."""
    locked(session, BillingAccount, account.id)
    earlier = session.scalars(
        select(Payment).where(Payment.account_id == account.id, Payment.reference == reference)
    ).one_or_none()
    invoice_id = invoice.id if invoice else None
    if earlier is not None:
        if (earlier.kind, earlier.amount, earlier.invoice_id) != (kind, amount, invoice_id):
            raise Conflict(
                f"payment {reference!r} was recorded as a {earlier.kind} of"
                f" {round_minor(earlier.amount, account.currency)} {account.currency}",
                code="payment-conflict",
            )
        return earlier
    if invoice is not None:
        _check_payable(invoice, amount)
    payment = Payment(
        id=new_id("pay"),
        account_id=account.id,
        tenant_path=account.tenant_path,
        invoice_id=invoice_id,
        kind=kind,
        amount=amount,
        currency=account.currency,
        method=method,
        reference=reference,
        created_at=now(),
    )
    session.add(payment)
    session.flush()
    into = {
        "top-up": ("", "cash_wallet"),
        "grant": ("", "credit_wallet"),
        "payment": ("", "receivable"),
    }
    source = (PLATFORM, "promotions") if kind == "grant" else (PLATFORM, "bank_clearing")
    _post(
        session,
        account,
        f"payment:{payment.id}",
        kind,
        (*source, amount),
        (*into[kind], -amount),
        invoice_id=invoice_id,
    )
    if invoice is not None:
        invoice.amount_due -= amount
        if invoice.amount_due == 0:
            invoice.paid_at = now()
    else:
        restore(session, account)
    return payment


def _check_payable(invoice: Invoice, amount: Decimal) -> None:
    if invoice.state != "finalized" or invoice.kind != "invoice":
        raise Conflict("only a finalized invoice is paid", code="invoice-not-finalized")
    if amount > invoice.amount_due:
        raise Conflict(f"{invoice.amount_due} is due on this invoice", code="overpayment")


# --- money out ------------------------------------------------------------------------------


def charge(session: Session, account: BillingAccount, invoice: Invoice) -> Decimal:
    """Prepaid: charge what the draft's total grew by since the last charge (give back what
    it shrank by), granted credit first. Posted once per rating (the reference names it).
    What the invoice has been charged in all, which is then its total."""
    charged = -ledger.posted_on(session, [invoice.id], account.id, "prepaid_clearing")
    delta = invoice.total - charged  # the clearing account holds charges as credits
    if not delta:
        return charged
    reference = f"charge:{invoice.id}:{invoice.rated_seq}:{invoice.total}"
    if delta > 0:
        from_credit = min(delta, max(balances(session, account)[1], Decimal(0)))
    else:  # what granted credit paid goes back to it first
        from_credit = -min(-delta, _paid_from_credit(session, account, [invoice.id]))
    _post(
        session,
        account,
        reference,
        "charge",
        ("", "credit_wallet", from_credit),
        ("", "cash_wallet", delta - from_credit),
        ("", "prepaid_clearing", -delta),
        invoice_id=invoice.id,
    )
    if delta < 0:  # given back
        restore(session, account)
    return invoice.total


def settle(session: Session, account: BillingAccount, invoice: Invoice) -> None:
    """An invoice (or credit note) was just finalized: book it, then settle it. Prepaid: the
    last charge, then the charges pay it. Postpaid: granted credit, then cash, pay what
    they can; the rest is due. A credit note first pays what is still due on the invoice it
    corrects, and gives the rest back: to granted credit as far as credit paid it, then cash."""
    _post(
        session,
        account,
        f"invoice:{invoice.id}:finalize",
        "invoice",
        ("", "receivable", invoice.total),
        (PLATFORM, "revenue", -invoice.subtotal),
        (PLATFORM, "tax_payable", -invoice.tax),
        invoice_id=invoice.id,
    )
    if invoice.kind == "credit_note":
        refund = -invoice.total - _settle_original(session, invoice)
        if refund:
            notes = select(Invoice.id).where(
                Invoice.corrects_invoice_id == invoice.corrects_invoice_id
            )
            paid_ids = [invoice.corrects_invoice_id, *session.scalars(notes)]
            to_credit = min(refund, _paid_from_credit(session, account, paid_ids))
            _post(
                session,
                account,
                f"invoice:{invoice.id}:refund",
                "refund",
                ("", "receivable", refund),
                ("", "credit_wallet", -to_credit),
                ("", "cash_wallet", -(refund - to_credit)),
                invoice_id=invoice.id,
            )
        invoice.amount_due = Decimal(0)
        restore(session, account)
    elif account.mode == "prepaid":
        paid = charge(session, account, invoice)
        _post(
            session,
            account,
            f"invoice:{invoice.id}:settle",
            "settle",
            ("", "prepaid_clearing", paid),
            ("", "receivable", -paid),
            invoice_id=invoice.id,
        )
        invoice.amount_due = invoice.total - paid
    else:
        cash, credit = balances(session, account)
        from_credit = max(Decimal(0), min(credit, invoice.total))
        from_cash = max(Decimal(0), min(cash, invoice.total - from_credit))
        _post(
            session,
            account,
            f"invoice:{invoice.id}:wallets",
            "settle",
            ("", "credit_wallet", from_credit),
            ("", "cash_wallet", from_cash),
            ("", "receivable", -(from_credit + from_cash)),
            invoice_id=invoice.id,
        )
        invoice.amount_due = invoice.total - from_credit - from_cash
    if invoice.amount_due <= 0:
        invoice.paid_at = now()


def _paid_from_credit(session: Session, account: BillingAccount, invoice_ids: list[str]) -> Decimal:
    """What granted credit paid, net, for these invoices (and the notes correcting them)."""
    return max(ledger.posted_on(session, invoice_ids, account.id, "credit_wallet"), Decimal(0))


def _settle_original(session: Session, note: Invoice) -> Decimal:
    """A credit note first pays what is still due on the invoice it corrects; how much."""
    original = locked(session, Invoice, note.corrects_invoice_id)  # read afresh
    applied = min(original.amount_due, -note.total)
    if applied > 0:
        original.amount_due -= applied
        if original.amount_due == 0:
            original.paid_at = now()
    return max(applied, Decimal(0))


# --- what an account may order ---------------------------------------------------------------


def exposure(session: Session, account: BillingAccount) -> Decimal:
    """Postpaid: what is owed (finalized, unpaid) plus what the current drafts come to."""
    owed = select(func.coalesce(func.sum(Invoice.amount_due), 0)).where(
        Invoice.account_id == account.id, Invoice.state == "finalized", Invoice.kind == "invoice"
    )
    drafts = select(func.coalesce(func.sum(Invoice.total), 0)).where(
        Invoice.account_id == account.id, Invoice.state == "draft"
    )
    return Decimal(session.scalar(owed)) + Decimal(session.scalar(drafts))


def guard(session: Session, tenant_id: str) -> None:
    """Refuse (402) something new for ``tenant_id`` when its account is prepaid and below
    zero, or postpaid and at its credit limit."""
    account = rating.account_of(session, tenant_id)
    if account is None:
        return
    if account.mode == "prepaid" and (
        account.state == "suspended" or sum(balances(session, account)) < 0
    ):
        raise PaymentRequired(
            "the account's balance is below zero: top it up to order more",
            code="insufficient-balance",
        )
    if account.mode == "postpaid" and account.credit_limit is not None:
        owed = exposure(session, account)
        if owed >= account.credit_limit:
            raise PaymentRequired(
                f"the account owes {owed} of its {account.credit_limit} credit limit",
                code="credit-limit-exceeded",
            )


def watch(session: Session, account: BillingAccount, invoice: Invoice, at: datetime) -> None:
    """Prepaid, after a charge: below zero suspends the account; a balance that covers less
    than a day at this month's rate so far alerts its administrators, once per dip."""
    balance = sum(balances(session, account), Decimal(0))
    if balance < 0 and account.state != "suspended":
        account.state, account.suspended_at = "suspended", at
        _tell(
            session,
            account,
            "account.suspended",
            "Your balance is below zero: top it up to order again",
        )
    elapsed = (min(at, invoice.period_end) - invoice.period_start) / timedelta(hours=1)
    burn = invoice.total / Decimal(str(elapsed)) if elapsed > 0 else Decimal(0)
    low = burn > 0 and balance < burn * LOW_BALANCE_HOURS
    if low and account.low_alerted_at is None:
        account.low_alerted_at = at
        hours = max(Decimal(0), balance / burn).quantize(Decimal(1))
        _tell(
            session, account, "wallet.low-balance", f"Your balance covers about {hours} more hours"
        )
    elif not low:
        account.low_alerted_at = None


def restore(session: Session, account: BillingAccount) -> None:
    """Money came in: a suspended account whose balance is back to zero or more is active."""
    if account.state == "suspended" and sum(balances(session, account), Decimal(0)) >= 0:
        account.state, account.suspended_at = "active", None


def _tell(session: Session, account: BillingAccount, event: str, subject: str) -> None:
    users = session.scalars(select(User).where(User.tenant_id == account.tenant_id))
    notifications.notify(
        session,
        event=event,
        tenant_id=account.tenant_id,
        user_ids=[user.id for user in users if TENANT_ADMIN in user.roles],
        subject=subject,
        body=subject,
        data={"account_id": account.id},
        link="/billing",
    )
