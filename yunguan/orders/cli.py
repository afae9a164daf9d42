"""``yunguan order|approval|approval-policy|service …``: ordering from the catalog,
deciding orders, and day-2 operations on what they made."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given, noun_app

Opt = typer.Option
OrderId = Annotated[str, typer.Argument(help="order id")]
ServiceId = Annotated[str, typer.Argument(help="service instance id")]
Comment = Annotated[str | None, Opt(help="a comment for the timeline")]

COLUMNS = {
    "order": ["id", "name", "kind", "state", "cost", "term_months", "tenant_id", "created_at"],
    "task": ["id", "order_id", "stage_name", "state", "due_at", "created_at"],
    "approval-policy": ["id", "tenant_id", "name", "stages"],
    "service": ["id", "name", "kind", "state", "tenant_id", "release_at"],
}
COMMANDS = {
    "order": noun_app(
        "/orders",
        COLUMNS["order"],
        "Orders placed from the catalog, and their approvals.",
        ("state", "tenant_id", "requested_by", "service_instance_id"),
        deletes=False,
    ),
    "approval": typer.Typer(help="Your approval inbox.", no_args_is_help=True),
    "approval-policy": noun_app(
        "/approval-policies",
        COLUMNS["approval-policy"],
        "Approval chains per tenant subtree.",
        ("tenant_id",),
    ),
    "service": noun_app(
        "/service-instances",
        COLUMNS["service"],
        "What orders made: day-2 operations, renewal, unsubscribing.",
        ("state", "tenant_id", "item_id"),
        deletes=False,
    ),
}


def _values(pairs: list[str] | None) -> dict[str, Any]:
    """KEY=VALUE pairs; a VALUE that parses as JSON (a number, true/false) is taken as such."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r}: use KEY=VALUE")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


@COMMANDS["order"].command("create")
def order_create(
    item: Annotated[str, Opt(help="catalog item id")],
    name: Annotated[str, Opt(help="a name for what is ordered")],
    value: Annotated[list[str] | None, Opt(help="a parameter, KEY=VALUE (repeatable)")] = None,
    months: Annotated[int, Opt(help="term in months; 0: pay-as-you-go")] = 0,
    auto_renew: Annotated[bool, Opt("--auto-renew")] = False,
    tenant: Annotated[str | None, Opt(help="order for this tenant (default: yours)")] = None,
    output: OutputOption = Format.table,
) -> None:
    """Place an order; it waits for approval or is fulfilled at once."""
    body = given(item_id=item, name=name, values=_values(value), term_months=months)
    body |= given(auto_renew=auto_renew or None, tenant_id=tenant)
    show(Client.from_login().post("/orders", body), COLUMNS["order"], output)


def _order_action(order_id: str, action: str, output: Format, **fields: Any) -> None:
    answer = Client.from_login().post(f"/orders/{order_id}/actions", given(action=action, **fields))
    show(answer, COLUMNS["order"], output)


def _decision(action: str) -> Any:
    def command(
        order_id: OrderId, comment: Comment = None, output: OutputOption = Format.table
    ) -> None:
        _order_action(order_id, action, output, comment=comment)

    command.__doc__ = {
        "approve": "Approve the order's current stage (you are one of its approvers).",
        "reject": "Reject the order.",
        "cancel": "Withdraw your order while it waits for approval.",
    }[action]
    return command


for _action in ("approve", "reject", "cancel"):
    COMMANDS["order"].command(_action)(_decision(_action))


@COMMANDS["order"].command("delegate")
def order_delegate(
    order_id: OrderId,
    to: Annotated[str, Opt(help="the user id who decides instead")],
    comment: Comment = None,
    output: OutputOption = Format.table,
) -> None:
    """Hand your approval task to someone else; its deadline stays."""
    _order_action(order_id, "delegate", output, user_id=to, comment=comment)


@COMMANDS["order"].command("comment")
def order_comment(
    order_id: OrderId,
    text: Annotated[str, typer.Argument(help="the comment")],
    output: OutputOption = Format.table,
) -> None:
    """Add a comment to the order's timeline."""
    _order_action(order_id, "comment", output, comment=text)


@COMMANDS["order"].command("events")
def order_events(order_id: OrderId, output: OutputOption = Format.table) -> None:
    """The order's timeline: placed, decisions, comments, fulfilment."""
    events = Client.from_login().get(f"/orders/{order_id}")["events"]
    show(events, ["at", "actor", "kind", "message"], output)


@COMMANDS["approval"].command("list")
def approval_list(
    state: Annotated[str | None, Opt(help="pending, approved, …")] = "pending",
    output: OutputOption = Format.table,
) -> None:
    """The approval tasks assigned to you."""
    client = Client.from_login()
    show(client.collect("/approval-tasks", None, **given(state=state)), COLUMNS["task"], output)


@COMMANDS["approval-policy"].command("create")
def policy_create(
    tenant: Annotated[str, Opt(help="the subtree whose orders it approves")],
    name: Annotated[str, Opt()],
    stages: Annotated[Path, Opt(help="YAML or JSON file: a list of stages")],
    output: OutputOption = Format.table,
) -> None:
    """An approval chain, e.g. stages: [{name: lead, approvers: [u-…]}, {name: head,
    approvers: [u-…], min_cost: "1000"}]."""
    body = {"tenant_id": tenant, "name": name, "stages": yaml.safe_load(stages.read_text())}
    show(Client.from_login().post("/approval-policies", body), COLUMNS["approval-policy"], output)


def _service_action(service_id: str, action: str, output: Format, **fields: Any) -> None:
    answer = Client.from_login().post(
        f"/service-instances/{service_id}/actions", given(action=action, **fields)
    )
    show(answer, COLUMNS["service"], output)


def _plain_action(action: str) -> Any:
    def command(service_id: ServiceId, output: OutputOption = Format.table) -> None:
        _service_action(service_id, action, output)

    command.__doc__ = {
        "start": "Start the service's instances.",
        "stop": "Stop the service's instances.",
        "unsubscribe": "Release the service now; its billing ends.",
        "reclaim": "Take the service back (platform administrators).",
    }[action]
    return command


for _action in ("start", "stop", "unsubscribe", "reclaim"):
    COMMANDS["service"].command(_action)(_plain_action(_action))


@COMMANDS["service"].command("renew")
def service_renew(
    service_id: ServiceId,
    months: Annotated[int, Opt(help="months to add")],
    output: OutputOption = Format.table,
) -> None:
    _service_action(service_id, "renew", output, months=months)


@COMMANDS["service"].command("auto-renew")
def service_auto_renew(
    service_id: ServiceId,
    enabled: Annotated[bool, typer.Argument(help="true or false")],
    output: OutputOption = Format.table,
) -> None:
    _service_action(service_id, "set-auto-renew", output, auto_renew=enabled)


@COMMANDS["service"].command("resize")
def service_resize(
    service_id: ServiceId,
    flavor: Annotated[str, Opt(help="the new flavor id")],
    comment: Comment = None,
    output: OutputOption = Format.table,
) -> None:
    """Place a change order (approved like an order) that resizes the service's instances."""
    body = given(flavor_id=flavor, comment=comment)
    answer = Client.from_login().post(f"/service-instances/{service_id}/change-orders", body)
    show(answer, COLUMNS["order"], output)
