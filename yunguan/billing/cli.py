"""``yunguan usage-event|price-book|billing-account|invoice|billing|cost``: billing commands."""

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

COLUMNS = {
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
    "quarantine": ["id", "source", "event_id", "tenant_id", "occurred_at", "received_at"],
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
}
usage, book, account = COMMANDS["usage-event"], COMMANDS["price-book"], COMMANDS["billing-account"]
invoice = COMMANDS["invoice"]


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
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    """Copies of events that differ from the recorded ones: kept aside, never counted."""
    items = Client.from_login().collect("/usage-quarantine", limit, source=source)
    show(items, COLUMNS["quarantine"], output)


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
    body = given(
        tenant_id=tenant_id,
        mode=mode,
        currency=currency,
        timezone=timezone,
        price_book=price_book,
        tax_rate=tax_rate,
        grace_hours=grace_hours,
    )
    show(Client.from_login().post("/billing-accounts", body), COLUMNS["billing-account"], output)


@account.command("set")
def account_set(
    account_id: str,
    timezone: Annotated[str | None, Opt()] = None,
    price_book: Annotated[str | None, Opt(help="price book name")] = None,
    tax_rate: TaxRate = None,
    grace_hours: GraceHours = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(
        timezone=timezone, price_book=price_book, tax_rate=tax_rate, grace_hours=grace_hours
    )
    answer = Client.from_login().patch(f"/billing-accounts/{account_id}", body)
    show(answer, COLUMNS["billing-account"], output)


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
