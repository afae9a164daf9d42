"""The hourly billing run as the workers schedule it (and ``POST /billing-runs`` asks for
it): rate, finalize and correct (``invoices.tick``), then act on suspended prepaid
accounts: stop their resources, or release them once the retention period is over.

It reaches into compute, network and orders, which record usage through
``billing.service``: so this module is imported only by the surfaces above them."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.billing import enforcement, invoices, wallets
from yunguan.billing.models import BillingAccount
from yunguan.billing.schemas import BillingRun
from yunguan.billing.service import WRITE
from yunguan.core.clock import now
from yunguan.core.config import get_settings
from yunguan.identity.scope import Principal, require
from yunguan.workflows.models import Operation


def hourly(session: Session, at: datetime | None = None) -> tuple[dict[str, int], list[Operation]]:
    """The run's counts, and the operations it started (to queue once committed)."""
    at = at or now()
    summary = invoices.tick(session, at)
    retention = timedelta(days=get_settings().billing_retention_days)
    suspended = select(BillingAccount).where(
        BillingAccount.mode == "prepaid", BillingAccount.state == "suspended"
    )
    operations: list[Operation] = []
    for account in session.scalars(suspended.order_by(BillingAccount.id)):
        wallets.restore(session, account)  # money may have come back another way
        if account.state != "suspended":
            continue
        past = account.suspended_at is not None and account.suspended_at + retention <= at
        operations += (enforcement.release if past else enforcement.stop)(session, account)
    summary["operations"] = len(operations)
    return summary, operations


def run(
    session: Session, principal: Principal, data: BillingRun
) -> tuple[dict[str, int], list[Operation]]:
    """Rate now, for operators who will not wait for the hour: one month for every account,
    or the hourly run's work. The counts, and the operations to queue once committed."""
    require(principal, WRITE)
    if data.period is None:
        return hourly(session, now())
    accounts = list(session.scalars(select(BillingAccount)))
    rated = len(invoices.rate_period(session, data.period, accounts))
    finalized = invoices.finalize_due(session, now()) if data.finalize_due else 0
    return {"rated": rated, "finalized": finalized, "corrected": 0, "operations": 0}, []
