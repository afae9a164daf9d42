"""REST: /usage-events (and the quarantine and intervals), /price-books, /billing-accounts,
/invoices and /billing-runs."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from yunguan.billing import jobs, schemas, service
from yunguan.core.api import Filter, ResourceId, problem_responses
from yunguan.core.deps import DbSession, get_db
from yunguan.core.pagination import Page, Pages
from yunguan.identity.crud import Collection, add_collection, add_listing
from yunguan.identity.deps import CurrentPrincipal
from yunguan.workflows import engine

router = APIRouter(responses=problem_responses(400, 401, 403, 404, 422))
WRITES = problem_responses(409)


add_listing(
    router,
    "usage-event",
    "/usage-events",
    schemas.UsageEventOut,
    service.list_usage_events,
    ("tenant_id", "resource_id", "meter"),
)


@router.post(
    "/usage-events",
    response_model=schemas.IngestOut,
    tags=["usage-events"],
    name="usage-event.ingest",
)
def ingest_usage_events(session: DbSession, principal: CurrentPrincipal, body: schemas.UsageBatch):
    """Record a batch of usage events: each ``(source, event_id)`` counts once; a copy that
    differs from the recorded one is quarantined."""
    return service.ingest(session, principal, body)


add_listing(
    router,
    "usage-quarantine",
    "/usage-quarantine",
    schemas.QuarantineOut,
    service.list_quarantine,
    ("source", "state"),
    tag="usage-events",
)


@router.post(
    "/usage-quarantine/{item_id}/actions",
    response_model=schemas.QuarantineOut,
    tags=["usage-events"],
    name="usage-quarantine.act",
    responses=WRITES,
)
def act_on_quarantine(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.QuarantineAction,
):
    """``accept`` the copy in place of the recorded event (late usage of a finalized month
    is then corrected), or ``discard`` it (409 once resolved)."""
    return service.resolve_quarantine(session, principal, item_id, body)


@router.get(
    "/usage-intervals",
    response_model=list[schemas.IntervalOut],
    tags=["usage-events"],
    name="usage-interval.list",
)
def list_intervals(
    session: DbSession,
    principal: CurrentPrincipal,
    resource_id: Annotated[str, Query(max_length=40)],
):
    """A resource's usage intervals per meter, derived from its events."""
    return [
        schemas.IntervalOut.model_validate(r)
        for r in service.intervals_of(session, principal, resource_id)
    ]


# --- price books ---

BOOKS, BOOK = "/price-books", "/price-books/{item_id}"
BOOK_TAGS = ["price-books"]


@router.get(
    BOOKS, response_model=Page[schemas.PriceBookOut], tags=BOOK_TAGS, name="price-book.list"
)
def list_books(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    name: Filter = None,
    state: Filter = None,
):
    rows, cursor = service.list_books(session, principal, page, name=name, state=state)
    items = [schemas.PriceBookSummary.model_validate(r) for r in rows]
    return Page(items=items, next_cursor=cursor)


@router.post(
    BOOKS,
    response_model=schemas.PriceBookOut,
    status_code=201,
    tags=BOOK_TAGS,
    name="price-book.create",
    responses=WRITES,
)
def create_book(session: DbSession, principal: CurrentPrincipal, body: schemas.PriceBookCreate):
    return service.book_out(session, service.create_book(session, principal, body))


@router.get(BOOK, response_model=schemas.PriceBookOut, tags=BOOK_TAGS, name="price-book.get")
def get_book(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    return service.book_out(session, service.get_book(session, principal, item_id))


@router.patch(
    BOOK,
    response_model=schemas.PriceBookOut,
    tags=BOOK_TAGS,
    name="price-book.update",
    responses=WRITES,
)
def update_book(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.PriceBookUpdate,
):
    return service.book_out(session, service.update_book(session, principal, item_id, body))


@router.delete(BOOK, status_code=204, tags=BOOK_TAGS, name="price-book.delete", responses=WRITES)
def delete_book(session: DbSession, principal: CurrentPrincipal, item_id: ResourceId):
    service.delete_book(session, principal, item_id)
    return Response(status_code=204)


@router.post(
    f"{BOOK}/actions",
    response_model=schemas.PriceBookOut,
    tags=BOOK_TAGS,
    name="price-book.act",
    responses=WRITES,
)
def act_on_book(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.PriceBookAction,
):
    """``publish`` freezes a draft (it takes effect at ``effective_from``, default now);
    ``new-version`` makes a draft copy to change."""
    return service.book_out(session, service.act_on_book(session, principal, item_id, body))


# --- accounts and invoices ---

add_collection(
    router,
    Collection(
        "billing-account",
        "/billing-accounts",
        schemas.AccountOut,
        schemas.AccountCreate,
        schemas.AccountUpdate,
        service.list_accounts,
        service.create_account,
        service.get_account,
        service.update_account,
        service.delete_account,
        filters=("tenant_id",),
    ),
)

for collection in (
    Collection(
        "discount",
        "/discounts",
        schemas.DiscountOut,
        schemas.DiscountCreate,
        schemas.DiscountUpdate,
        service.list_discounts,
        service.create_discount,
        service.get_discount,
        service.update_discount,
        service.delete_discount,
        filters=("kind", "tenant_id", "meter"),
    ),
    Collection(
        "coupon",
        "/coupons",
        schemas.CouponOut,
        schemas.CouponCreate,
        schemas.CouponUpdate,
        service.list_coupons,
        service.create_coupon,
        service.get_coupon,
        service.update_coupon,
        service.delete_coupon,
        filters=("code",),
    ),
    Collection(
        "plan-subscription",
        "/plan-subscriptions",
        schemas.PlanSubscriptionOut,
        schemas.PlanSubscriptionCreate,
        schemas.PlanSubscriptionUpdate,
        service.list_plan_subscriptions,
        service.create_plan_subscription,
        service.get_plan_subscription,
        service.update_plan_subscription,
        service.end_plan_subscription,
        filters=("tenant_id", "plan", "state"),
    ),
):
    add_collection(router, collection)


@router.post(
    "/billing-accounts/{item_id}/actions",
    response_model=schemas.AccountOut,
    tags=["billing-accounts"],
    name="billing-account.act",
    responses=WRITES,
)
def act_on_account(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.AccountAction,
):
    """``redeem-coupon`` (the account's administrators); ``top-up`` the cash wallet or
    ``grant`` credit (the platform records money once per reference)."""
    return service.act_on_account(session, principal, item_id, body)


@router.get(
    "/wallets", response_model=Page[schemas.WalletOut], tags=["wallets"], name="wallet.list"
)
def list_wallets(
    session: DbSession, principal: CurrentPrincipal, page: Pages, tenant_id: Filter = None
):
    """The wallets of the billing accounts the principal sees."""
    items, cursor = service.list_wallets(session, principal, page, tenant_id=tenant_id)
    return Page(items=items, next_cursor=cursor)


for noun, path, out, lister in (
    ("payment", "/payments", schemas.PaymentOut, service.list_payments),
    (
        "ledger-transaction",
        "/ledger-transactions",
        schemas.LedgerTransactionOut,
        service.list_ledger,
    ),
):
    add_listing(router, noun, path, out, lister, ("account_id", "invoice_id"), tag="wallets")


add_collection(
    router,
    Collection(
        "vendor",
        "/vendors",
        schemas.VendorOut,
        schemas.VendorCreate,
        schemas.VendorUpdate,
        service.list_vendors,
        service.create_vendor,
        service.get_vendor,
        service.update_vendor,
        None,
        filters=("name", "tenant_id"),
    ),
)


add_listing(
    router,
    "vendor-statement",
    "/vendor-statements",
    schemas.StatementOut,
    service.list_statements,
    ("vendor_id", "period"),
    tag="vendors",
)


@router.post(
    "/vendor-statements",
    response_model=list[schemas.StatementOut],
    status_code=201,
    tags=["vendors"],
    name="vendor-statement.create",
    responses=WRITES,
)
def settle_vendor(session: DbSession, principal: CurrentPrincipal, body: schemas.StatementCreate):
    """Settle a vendor's month once it is over: a statement per currency of its lines on
    the invoices collected in it (409 if settled already)."""
    return service.settle_vendor(session, principal, body)


INVOICE_TAGS = ["invoices"]


@router.get(
    "/invoices", response_model=Page[schemas.InvoiceOut], tags=INVOICE_TAGS, name="invoice.list"
)
def list_invoices(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Pages,
    account_id: Filter = None,
    tenant_id: Filter = None,
    period: Filter = None,
    state: Filter = None,
    kind: Filter = None,
):
    filters = {"account_id": account_id, "tenant_id": tenant_id, "period": period}
    rows, cursor = service.list_invoices(
        session, principal, page, state=state, kind=kind, **filters
    )
    return Page(items=[schemas.InvoiceOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/invoices/{item_id}",
    response_model=schemas.InvoiceDetailOut,
    tags=INVOICE_TAGS,
    name="invoice.get",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_invoice(
    request: Request, session: DbSession, principal: CurrentPrincipal, item_id: ResourceId
) -> Any:
    """The invoice with its lines; as CSV when asked for ``text/csv``."""
    invoice = service.get_invoice(session, principal, item_id)
    if "text/csv" in request.headers.get("accept", ""):
        return service.invoice_csv(session, invoice)
    return service.invoice_out(session, invoice)


@router.post(
    "/invoices/{item_id}/actions",
    response_model=schemas.InvoiceDetailOut,
    tags=INVOICE_TAGS,
    name="invoice.act",
    responses=WRITES,
)
def act_on_invoice(
    session: DbSession,
    principal: CurrentPrincipal,
    item_id: ResourceId,
    body: schemas.InvoiceAction,
):
    """``finalize`` a draft now (rated a last time, numbered, frozen, settled from the
    wallets); ``credit`` a finalized invoice (answers the credit note); record a ``pay``ment
    (once per reference)."""
    return service.invoice_out(session, service.act_on_invoice(session, principal, item_id, body))


@router.post(
    "/billing-runs", response_model=dict[str, int], tags=INVOICE_TAGS, name="billing-run.create"
)
def run_billing(request: Request, principal: CurrentPrincipal, body: schemas.BillingRun):
    """Rate now instead of at the next hourly run: one month for every account, or (no
    ``period``) what the hourly run does."""
    with get_db(request).session() as session:
        summary, operations = jobs.run(session, principal, body)
    for operation in operations:
        engine.submit(operation.id, operation.kind)
    return summary
