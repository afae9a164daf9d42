"""``yunguan usage-event|price-book|billing-account|invoice|billing|cost|discount|coupon|wallet|
payment|ledger|vendor``: billing commands."""

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from yunguan.cli.client import Client, err
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import Limit, given, noun_app

Opt = typer.Option
BATCH = 10_000
"""The most events one POST /usage-events takes."""
BookId = Annotated[str, typer.Argument(help="price book id")]
InvoiceId = Annotated[str, typer.Argument(help="invoice id")]
Items = Annotated[Path, Opt("--file", metavar="FILE", help="YAML or JSON: a list of price items")]
TaxRate = Annotated[Decimal | None, Opt(help="e.g. 0.06")]
GraceHours = Annotated[int | None, Opt(help="hours after the month before it is finalized")]
AccountId = Annotated[str, typer.Argument(help="billing account id")]
Money = Annotated[Decimal, Opt(help="e.g. 10.00")]
Reference = Annotated[
    str, Opt(help="the bank's or gateway's: money is recorded once per reference")
]
Method = Annotated[str | None, Opt(help="e.g. transfer or alipay")]
ValidFrom = Annotated[str, Opt(help="ISO time with its zone")]
ValidUntil = Annotated[str | None, Opt(help="ISO time with its zone (default: no end)")]
Description = Annotated[str | None, Opt()]
Currency = Annotated[str | None, Opt(help="CNY (default), USD, EUR, HKD, JPY or KRW")]
Percent = Annotated[Decimal | None, Opt(help="percent off, e.g. 10")]
MaxRedemptions = Annotated[int | None, Opt(help="how many accounts may redeem it")]
CommissionRate = Annotated[Decimal | None, Opt(help="the platform's share, e.g. 0.15")]

COLUMNS = {
    "plan-subscription": ["id", "tenant_id", "plan", "quantity", "state", "started_at", "ended_at"],
    "usage-event": [
        "occurred_at",
        "source",
        "event_id",
        "tenant_id",
        "resource_id",
        "meter",
        "action",
        "quantity",
        "price_key",
    ],
    "interval": ["meter", "price_key", "quantity", "started_at", "ended_at"],
    "quarantine": ["id", "source", "event_id", "tenant_id", "occurred_at", "state", "received_at"],
    "ingest": ["received", "inserted", "duplicates", "quarantined"],
    "price-book": ["id", "name", "version", "currency", "state", "effective_from", "published_at"],
    "price-item": [
        "meter",
        "price_key",
        "model",
        "basis",
        "unit_price",
        "tiers",
        "min_charge_seconds",
        "description",
    ],
    "billing-account": [
        "id",
        "tenant_id",
        "mode",
        "currency",
        "timezone",
        "price_book",
        "tax_rate",
        "grace_hours",
    ],
    "invoice": [
        "id",
        "number",
        "kind",
        "period",
        "state",
        "currency",
        "subtotal",
        "tax",
        "total",
        "account_id",
        "tenant_id",
    ],
    "invoice-line": [
        "line_no",
        "kind",
        "resource_id",
        "meter",
        "price_key",
        "basis",
        "quantity",
        "seconds",
        "unit_price",
        "amount",
    ],
    "discount": [
        "id",
        "kind",
        "tenant_id",
        "meter",
        "price_key",
        "percent",
        "amount",
        "unit_price",
        "currency",
        "valid_from",
        "valid_until",
        "description",
    ],
    "coupon": [
        "id",
        "code",
        "kind",
        "percent",
        "amount",
        "currency",
        "meter",
        "valid_from",
        "valid_until",
        "max_redemptions",
        "description",
    ],
    "wallet": ["account_id", "tenant_id", "mode", "state", "currency", "cash", "credit", "balance"],
    "payment": [
        "id",
        "created_at",
        "account_id",
        "invoice_id",
        "kind",
        "amount",
        "currency",
        "method",
        "reference",
    ],
    "ledger": ["id", "at", "kind", "reference", "account_id", "invoice_id"],
    "vendor": ["id", "name", "tenant_id", "commission_rate", "products", "created_at"],
    "statement": [
        "id",
        "vendor_id",
        "period",
        "currency",
        "commission_rate",
        "base",
        "fee",
        "payout",
        "lines",
    ],
    "run": ["rated", "finalized", "corrected", "operations"],
    "cost": ["period", "currency", "group", "label", "amount"],
}
INVOICE_HEADER = [
    *COLUMNS["invoice"][:5],
    "period_start",
    "period_end",
    *COLUMNS["invoice"][5:],
    "tax_rate",
    "finalize_after",
    "finalized_at",
    "corrects_invoice_id",
    "reason",
]
COMMANDS = {
    "usage-event": typer.Typer(
        help="Metered usage: the events invoices are rated from.", no_args_is_help=True
    ),
    "price-book": typer.Typer(
        help="Price books: versioned price lists; publishing freezes one.", no_args_is_help=True
    ),
    "billing-account": noun_app(
        "/billing-accounts",
        COLUMNS["billing-account"],
        "Billing accounts: who pays for a tenant subtree, how and under which price book.",
        ("tenant_id",),
        deletes=False,
    ),
    "invoice": typer.Typer(help="Invoices and credit notes.", no_args_is_help=True),
    "billing": typer.Typer(help="Rating usage into invoices.", no_args_is_help=True),
    "cost": typer.Typer(help="Cost reports: what the invoices add up to.", no_args_is_help=True),
    "discount": noun_app(
        "/discounts",
        COLUMNS["discount"],
        "Discounts: a percentage off, a fixed amount off or an overriding price, per tenant "
        "subtree, meter and price key, while valid.",
        ("kind", "tenant_id", "meter"),
    ),
    "coupon": noun_app(
        "/coupons",
        COLUMNS["coupon"],
        "Coupons: codes a billing account redeems for a percentage or an amount off.",
        ("code",),
    ),
    "wallet": typer.Typer(
        help="Wallets: each billing account's cash and granted credit.", no_args_is_help=True
    ),
    "payment": typer.Typer(
        help="Payments: top-ups, grants and invoice payments, each recorded once.",
        no_args_is_help=True,
    ),
    "ledger": typer.Typer(
        help="The ledger: every movement of money, a balanced transaction (the platform's).",
        no_args_is_help=True,
    ),
    "plan-subscription": noun_app(
        "/plan-subscriptions",
        COLUMNS["plan-subscription"],
        "Plan subscriptions: a tenant's plans (and packages), billed by the hour or by the"
        " month prorated by days.",
        ("tenant_id", "plan", "state"),
        deletes=False,
    ),
    "vendor": noun_app(
        "/vendors",
        COLUMNS["vendor"],
        "Vendors (ISVs): the products they sell on the platform and their monthly statements.",
        ("name", "tenant_id"),
        deletes=False,
    ),
}
usage, book, account = COMMANDS["usage-event"], COMMANDS["price-book"], COMMANDS["billing-account"]
invoice, discount, coupon, vendor = (
    COMMANDS[n] for n in ("invoice", "discount", "coupon", "vendor")
)


class _ExactLoader(yaml.SafeLoader):
    """YAML (or JSON) whose decimals stay the text written: the API takes money as strings."""


_ExactLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: loader.construct_scalar(node)
)


def _items(path: Path) -> list[dict[str, Any]]:
    return yaml.load(path.read_text(), Loader=_ExactLoader)


def _batches(lines: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
    """The events of NDJSON lines (decimals as written), in batches the API takes."""
    batch: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            batch.append(json.loads(line, parse_float=str))
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"line {number}: {exc}")
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _with_rows(
    answer: dict[str, Any],
    columns: list[str],
    rows: list[dict],
    row_columns: list[str],
    output: Format,
) -> None:
    """An object's fields one per line, then a table of its rows (as JSON: the object as the
    server answered)."""
    if output is Format.json:
        show(answer, [], output)
        return
    show([{"field": c, "value": answer[c]} for c in columns], ["field", "value"], output)
    show(rows, row_columns, output)


def _send(ctx: typer.Context, method: str, path: str, noun: str, **changed: Any) -> None:
    """Send a command's options as the body (all it was given but --output; ``changed``
    replaces some, None drops one) and show the answer. Its arguments are in ``path``."""
    names = {p.name for p in ctx.command.params if p.param_type_name == "option"} - {"output"}
    fields = {name: value for name, value in ctx.params.items() if name in names} | changed
    answer = Client.from_login().request(method, path, json=given(**fields))
    show(answer, COLUMNS[noun], ctx.params["output"])


# --- usage events ---


@usage.command("list")
def usage_list(
    tenant_id: Annotated[str | None, Opt()] = None,
    resource_id: Annotated[str | None, Opt()] = None,
    meter: Annotated[str | None, Opt()] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    items = Client.from_login().collect(
        "/usage-events", limit, tenant_id=tenant_id, resource_id=resource_id, meter=meter
    )
    show(items, COLUMNS["usage-event"], output)


@usage.command("import")
def usage_import(
    file: Annotated[
        typer.FileText, typer.Argument(metavar="FILE", help="NDJSON, one event a line; - is stdin")
    ],
    output: OutputOption = Format.table,
) -> None:
    """Send usage events; an event sent again (same source and event_id) counts once."""
    client = Client.from_login()
    totals = dict.fromkeys(COLUMNS["ingest"], 0)
    try:
        for batch in _batches(file):
            counts = client.post("/usage-events", {"events": batch})
            totals = {key: total + counts[key] for key, total in totals.items()}
    except (typer.Exit, typer.BadParameter):
        if totals["received"]:
            err.print(f"the first {totals['received']} events are recorded: import again to resume")
        raise
    show(totals, COLUMNS["ingest"], output)


@usage.command("intervals")
def usage_intervals(resource_id: str, output: OutputOption = Format.table) -> None:
    """A resource's usage intervals per meter, derived from its events."""
    intervals = Client.from_login().get("/usage-intervals", resource_id=resource_id)
    show(intervals, COLUMNS["interval"], output)


@usage.command("quarantine")
def usage_quarantine(
    source: Annotated[str | None, Opt()] = None,
    state: Annotated[str | None, Opt(help="held, accepted or discarded")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    """Copies of events that differ from the recorded ones: kept aside, never counted."""
    items = Client.from_login().collect("/usage-quarantine", limit, source=source, state=state)
    show(items, COLUMNS["quarantine"], output)


def _resolve(action: str, held_id: str, output: Format) -> None:
    answer = Client.from_login().post(f"/usage-quarantine/{held_id}/actions", {"action": action})
    show(answer, COLUMNS["quarantine"], output)


@usage.command("accept")
def usage_accept(held_id: str, output: OutputOption = Format.table) -> None:
    """Count a quarantined copy in place of the recorded event (a finalized month is then
    corrected)."""
    _resolve("accept", held_id, output)


@usage.command("discard")
def usage_discard(held_id: str, output: OutputOption = Format.table) -> None:
    """Drop a quarantined copy for good."""
    _resolve("discard", held_id, output)


# --- price books ---


def _tier(tier: dict[str, Any]) -> str:
    return f"{tier['upper'] or '∞'}: {tier['unit_price']}"


def _show_book(answer: dict[str, Any], output: Format) -> None:
    items = [{**item, "tiers": list(map(_tier, item["tiers"]))} for item in answer["items"]]
    _with_rows(answer, COLUMNS["price-book"], items, COLUMNS["price-item"], output)


@book.command("list")
def book_list(
    name: Annotated[str | None, Opt()] = None,
    state: Annotated[str | None, Opt(help="draft or published")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    items = Client.from_login().collect("/price-books", limit, name=name, state=state)
    show(items, COLUMNS["price-book"], output)


@book.command("show")
def book_show(book_id: BookId, output: OutputOption = Format.table) -> None:
    """A price book and its items."""
    _show_book(Client.from_login().get(f"/price-books/{book_id}"), output)


@book.command("create")
def book_create(
    name: Annotated[str, Opt()],
    items: Items,
    currency: Annotated[str | None, Opt(help="CNY, USD, EUR, HKD, JPY or KRW")] = None,
    description: Annotated[str | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    """A draft: version 1 of a new name, or the next version of an existing one. An item is
    {meter, price_key, model, basis, unit_price, tiers: [{upper, unit_price}],
    min_charge_seconds, description}."""
    body = given(name=name, currency=currency, description=description, items=_items(items))
    _show_book(Client.from_login().post("/price-books", body), output)


@book.command("set-items")
def book_set_items(book_id: BookId, items: Items, output: OutputOption = Format.table) -> None:
    """Replace a draft's items."""
    answer = Client.from_login().patch(f"/price-books/{book_id}", {"items": _items(items)})
    _show_book(answer, output)


@book.command("publish")
def book_publish(
    book_id: BookId,
    effective_from: Annotated[str | None, Opt(help="ISO time with its zone (default: now)")] = None,
    output: OutputOption = Format.table,
) -> None:
    """Freeze a draft; it takes over from the previous version at --effective-from."""
    body = given(action="publish", effective_from=effective_from)
    _show_book(Client.from_login().post(f"/price-books/{book_id}/actions", body), output)


@book.command("new-version")
def book_new_version(book_id: BookId, output: OutputOption = Format.table) -> None:
    """A draft copy of the book under the next version number, to change."""
    answer = Client.from_login().post(f"/price-books/{book_id}/actions", {"action": "new-version"})
    _show_book(answer, output)


@book.command("delete")
def book_delete(book_id: BookId) -> None:
    """Delete a draft."""
    Client.from_login().delete(f"/price-books/{book_id}")
    typer.echo(f"deleted {book_id}")


# --- billing accounts ---


@account.command("create")
def account_create(
    ctx: typer.Context,
    tenant_id: Annotated[str, Opt()],
    mode: Annotated[str | None, Opt(help="postpaid or prepaid")] = None,
    currency: Annotated[str | None, Opt()] = None,
    timezone: Annotated[
        str | None, Opt(help="its months are this zone's, e.g. Asia/Shanghai")
    ] = None,
    price_book: Annotated[str | None, Opt(help="price book name")] = None,
    tax_rate: TaxRate = None,
    grace_hours: GraceHours = None,
    output: OutputOption = Format.table,
) -> None:
    """The account that pays for a tenant's subtree."""
    _send(ctx, "POST", "/billing-accounts", "billing-account")


@account.command("set")
def account_set(
    ctx: typer.Context,
    account_id: str,
    timezone: Annotated[str | None, Opt()] = None,
    price_book: Annotated[str | None, Opt(help="price book name")] = None,
    tax_rate: TaxRate = None,
    grace_hours: GraceHours = None,
    output: OutputOption = Format.table,
) -> None:
    _send(ctx, "PATCH", f"/billing-accounts/{account_id}", "billing-account")


@account.command("redeem")
def account_redeem(
    ctx: typer.Context,
    account_id: AccountId,
    code: Annotated[str, Opt(help="the coupon's code")],
    output: OutputOption = Format.table,
) -> None:
    """Redeem a coupon: the account holds it from now on (once)."""
    path = f"/billing-accounts/{account_id}/actions"
    _send(ctx, "POST", path, "billing-account", action="redeem-coupon")


def _receive(action: str, help_text: str) -> None:
    def command(
        account_id: AccountId,
        amount: Money,
        reference: Reference,
        method: Method = None,
        output: OutputOption = Format.table,
    ) -> None:
        client = Client.from_login()
        body = given(action=action, amount=amount, reference=reference, method=method)
        held = client.post(f"/billing-accounts/{account_id}/actions", body)
        wallets = client.get("/wallets", tenant_id=held["tenant_id"])["items"]
        show(next(w for w in wallets if w["account_id"] == held["id"]), COLUMNS["wallet"], output)

    command.__doc__ = help_text
    account.command(action)(command)


_receive(
    "top-up",
    "Cash received into the account's wallet, recorded once per reference (the same again "
    "changes nothing; another amount is refused); shows the wallet.",
)
_receive(
    "grant",
    "Credit granted to the account (spent before cash), recorded once per reference; shows "
    "the wallet.",
)


# --- wallets, payments and the ledger ---


@COMMANDS["wallet"].command("list")
def wallet_list(
    tenant_id: Annotated[str | None, Opt()] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    """The wallets of the billing accounts you see: cash, credit and their sum."""
    items = Client.from_login().collect("/wallets", limit, tenant_id=tenant_id)
    show(items, COLUMNS["wallet"], output)


def _money_list(noun: str, path: str, help_text: str) -> None:
    def command(
        account_id: Annotated[str | None, Opt()] = None,
        invoice_id: Annotated[str | None, Opt()] = None,
        limit: Limit = None,
        output: OutputOption = Format.table,
    ) -> None:
        filters = {"account_id": account_id, "invoice_id": invoice_id}
        show(Client.from_login().collect(path, limit, **filters), COLUMNS[noun], output)

    command.__doc__ = help_text
    COMMANDS[noun].command("list")(command)


_money_list("payment", "/payments", "Money received or granted, per account and invoice.")
_money_list("ledger", "/ledger-transactions", "The ledger's transactions (the platform's).")


# --- discounts and coupons ---


def _tier_in(text: str) -> dict[str, str | None]:
    """``UPPER:PRICE`` (``:PRICE`` for the last tier, with no upper bound)."""
    upper, sep, price = text.partition(":")
    if not sep or not price:
        raise typer.BadParameter(f"{text!r}: UPPER:PRICE, or :PRICE for the last tier")
    return {"upper": upper or None, "unit_price": price}


@discount.command("create")
def discount_create(
    ctx: typer.Context,
    kind: Annotated[str, Opt(help="percent, fixed (off the invoice) or override (a price)")],
    valid_from: ValidFrom,
    valid_until: ValidUntil = None,
    tenant_id: Annotated[str | None, Opt(help="a tenant subtree (default: every tenant)")] = None,
    meter: Annotated[str | None, Opt(help="only this meter's lines")] = None,
    price_key: Annotated[str | None, Opt(help="only this price key's lines")] = None,
    percent: Percent = None,
    amount: Annotated[Decimal | None, Opt(help="fixed: the amount off, e.g. 2.00")] = None,
    unit_price: Annotated[Decimal | None, Opt(help="override: the unit price instead")] = None,
    tier: Annotated[
        list[str] | None,
        Opt(help="override: graduated tiers, UPPER:PRICE (repeatable; :PRICE for the last)"),
    ] = None,
    currency: Currency = None,
    description: Description = None,
    funded_by: Annotated[
        str | None, Opt(help="platform (default) or vendor: the vendor's base is reduced")
    ] = None,
    output: OutputOption = Format.table,
) -> None:
    """A discount, taken off the lines it covers while valid."""
    tiers = [_tier_in(t) for t in tier] if tier else None
    _send(ctx, "POST", "/discounts", "discount", tier=None, tiers=tiers)


@discount.command("set")
def discount_set(
    ctx: typer.Context,
    discount_id: str,
    valid_until: ValidUntil = None,
    description: Description = None,
    output: OutputOption = Format.table,
) -> None:
    """When a discount stops and what it says (what it does is set at creation)."""
    _send(ctx, "PATCH", f"/discounts/{discount_id}", "discount")


@coupon.command("create")
def coupon_create(
    ctx: typer.Context,
    code: Annotated[str, Opt(help="what accounts redeem: letters, digits, _ and -")],
    kind: Annotated[str, Opt(help="percent or amount")],
    valid_from: ValidFrom,
    valid_until: ValidUntil = None,
    percent: Percent = None,
    amount: Annotated[Decimal | None, Opt(help="the amount off, e.g. 5.00")] = None,
    currency: Currency = None,
    meter: Annotated[str | None, Opt(help="only this meter's lines")] = None,
    max_redemptions: MaxRedemptions = None,
    description: Description = None,
    output: OutputOption = Format.table,
) -> None:
    """A coupon for billing accounts to redeem."""
    _send(ctx, "POST", "/coupons", "coupon")


@coupon.command("set")
def coupon_set(
    ctx: typer.Context,
    coupon_id: str,
    valid_until: ValidUntil = None,
    max_redemptions: MaxRedemptions = None,
    description: Description = None,
    output: OutputOption = Format.table,
) -> None:
    _send(ctx, "PATCH", f"/coupons/{coupon_id}", "coupon")


# --- plan subscriptions ---

plans = COMMANDS["plan-subscription"]
Plan = Annotated[str, Opt(help="a plan of the account's price book (meter 'subscription')")]
PlanCount = Annotated[int | None, Opt(help="how many (default 1)")]


@plans.command("create")
def plan_subscribe(
    ctx: typer.Context,
    plan: Plan,
    quantity: PlanCount = None,
    tenant_id: Annotated[str | None, Opt(help="default: your tenant")] = None,
    output: OutputOption = Format.table,
) -> None:
    """Subscribe a tenant to a plan, from now on."""
    _send(ctx, "POST", "/plan-subscriptions", "plan-subscription")


@plans.command("set")
def plan_change(
    ctx: typer.Context,
    subscription_id: str,
    plan: Annotated[str | None, Opt(help="another plan")] = None,
    quantity: PlanCount = None,
    output: OutputOption = Format.table,
) -> None:
    """Change plan or quantity from now on (this day is billed to the new plan)."""
    _send(ctx, "PATCH", f"/plan-subscriptions/{subscription_id}", "plan-subscription")


@plans.command("end")
def plan_end(subscription_id: str) -> None:
    """Unsubscribe (the day it ends is not billed)."""
    Client.from_login().delete(f"/plan-subscriptions/{subscription_id}")
    typer.echo(f"ended {subscription_id}")


# --- vendors ---


def _products(products: list[str] | None) -> list[dict[str, str]] | None:
    """``METER`` or ``METER:PRICE_KEY`` each."""
    if not products:
        return None
    pairs = (product.partition(":") for product in products)
    return [{"meter": meter, "price_key": key} for meter, _, key in pairs]


Products = Annotated[list[str], Opt("--product", help="METER or METER:PRICE_KEY (repeatable)")]


@vendor.command("create")
def vendor_create(
    ctx: typer.Context,
    name: Annotated[str, Opt()],
    tenant_id: Annotated[str, Opt(help="the vendor's own tenant")],
    product: Products,
    commission_rate: CommissionRate = None,
    output: OutputOption = Format.table,
) -> None:
    """A vendor and the products (meters and price keys) it is owed for."""
    _send(ctx, "POST", "/vendors", "vendor", product=None, products=_products(product))


@vendor.command("set")
def vendor_set(
    ctx: typer.Context,
    vendor_id: str,
    product: Annotated[
        list[str] | None, Opt("--product", help="METER or METER:PRICE_KEY; replaces them all")
    ] = None,
    commission_rate: CommissionRate = None,
    output: OutputOption = Format.table,
) -> None:
    path = f"/vendors/{vendor_id}"
    _send(ctx, "PATCH", path, "vendor", product=None, products=_products(product))


@vendor.command("settle")
def vendor_settle(
    vendor_id: Annotated[str, Opt()],
    period: Annotated[str, Opt(help="YYYY-MM, once it is over")],
    output: OutputOption = Format.table,
) -> None:
    """Settle a vendor's month once it is over: a statement per currency (once)."""
    body = {"vendor_id": vendor_id, "period": period}
    show(Client.from_login().post("/vendor-statements", body), COLUMNS["statement"], output)


@vendor.command("statements")
def vendor_statements(
    vendor_id: Annotated[str | None, Opt()] = None,
    period: Annotated[str | None, Opt(help="YYYY-MM")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    """Vendors' monthly statements: what they were owed, the commission and the payout."""
    items = Client.from_login().collect(
        "/vendor-statements", limit, vendor_id=vendor_id, period=period
    )
    show(items, COLUMNS["statement"], output)


# --- invoices ---


def _show_invoice(answer: dict[str, Any], output: Format) -> None:
    _with_rows(answer, INVOICE_HEADER, answer["lines"], COLUMNS["invoice-line"], output)


@invoice.command("list")
def invoice_list(
    account_id: Annotated[str | None, Opt()] = None,
    tenant_id: Annotated[str | None, Opt()] = None,
    period: Annotated[str | None, Opt(help="YYYY-MM")] = None,
    state: Annotated[str | None, Opt(help="draft or finalized")] = None,
    kind: Annotated[str | None, Opt(help="invoice or credit_note")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    filters = {"account_id": account_id, "tenant_id": tenant_id, "period": period}
    items = Client.from_login().collect("/invoices", limit, state=state, kind=kind, **filters)
    show(items, COLUMNS["invoice"], output)


@invoice.command("show")
def invoice_show(invoice_id: InvoiceId, output: OutputOption = Format.table) -> None:
    """An invoice and its lines."""
    _show_invoice(Client.from_login().get(f"/invoices/{invoice_id}"), output)


@invoice.command("download")
def invoice_download(
    invoice_id: InvoiceId,
    output_file: Annotated[
        typer.FileBinaryWrite, Opt(metavar="FILE", help="default: stdout")
    ] = "-",
) -> None:
    """An invoice's lines and totals as CSV."""
    answer = Client.from_login().send(
        "GET", f"/invoices/{invoice_id}", headers={"Accept": "text/csv"}
    )
    output_file.write(answer.content)


@invoice.command("finalize")
def invoice_finalize(invoice_id: InvoiceId, output: OutputOption = Format.table) -> None:
    """Finalize a draft now: rated a last time, numbered, frozen."""
    answer = Client.from_login().post(f"/invoices/{invoice_id}/actions", {"action": "finalize"})
    _show_invoice(answer, output)


@invoice.command("credit")
def invoice_credit(
    invoice_id: InvoiceId,
    amount: Annotated[Decimal, Opt(help="before tax, e.g. 10.00")],
    reason: Annotated[str, Opt()],
    output: OutputOption = Format.table,
) -> None:
    """Credit a finalized invoice; shows the credit note."""
    body = given(action="credit", amount=amount, reason=reason)
    _show_invoice(Client.from_login().post(f"/invoices/{invoice_id}/actions", body), output)


@invoice.command("pay")
def invoice_pay(
    invoice_id: InvoiceId,
    amount: Money,
    reference: Reference,
    method: Method = None,
    output: OutputOption = Format.table,
) -> None:
    """Record a payment of a finalized invoice, once per reference."""
    body = given(action="pay", amount=amount, reference=reference, method=method)
    _show_invoice(Client.from_login().post(f"/invoices/{invoice_id}/actions", body), output)


@COMMANDS["billing"].command("run")
def billing_run(
    period: Annotated[
        str | None, Opt(help="YYYY-MM: rate this month for every account (default: as hourly)")
    ] = None,
    finalize: Annotated[bool, Opt(help="finalize the invoices past their grace period")] = True,
    output: OutputOption = Format.table,
) -> None:
    """Rate now instead of at the next hourly run."""
    body = given(period=period) | {"finalize_due": finalize}
    show(Client.from_login().post("/billing-runs", body), COLUMNS["run"], output)


@COMMANDS["cost"].command("report")
def cost_report(
    group_by: Annotated[
        str | None, Opt(help="subtree (default), tenant, project, product or resource")
    ] = None,
    start: Annotated[str | None, Opt("--from", help="YYYY-MM (default: 5 months before)")] = None,
    end: Annotated[str | None, Opt("--to", help="YYYY-MM (default: this month)")] = None,
    tenant_id: Annotated[str | None, Opt(help="only this tenant's subtree")] = None,
    csv: Annotated[bool, Opt("--csv", help="print CSV")] = False,
    output: OutputOption = Format.table,
) -> None:
    """Cost per month and group, from the invoices you may see (this month's to date)."""
    client = Client.from_login()
    params = given(**{"group_by": group_by, "from": start, "to": end, "tenant_id": tenant_id})
    if csv:
        answer = client.send("GET", "/cost-reports", params=params, headers={"Accept": "text/csv"})
        typer.echo(answer.text, nl=False)
        return
    show(client.get("/cost-reports", **params)["items"], COLUMNS["cost"], output)
