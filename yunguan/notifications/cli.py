"""``yunguan notification …`` (the caller's inbox) and ``yunguan webhook …``."""

from typing import Annotated

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import Limit, given, noun_app

Opt = typer.Option

COLUMNS = {
    "notification": ["id", "created_at", "event", "subject", "link", "read_at"],
    "webhook": ["id", "tenant_id", "url", "events", "enabled", "description"],
    "delivery": ["id", "event", "state", "attempts", "next_attempt_at", "last_error"],
}
COMMANDS = {
    "notification": typer.Typer(help="Your inbox.", no_args_is_help=True),
    "webhook": noun_app(
        "/webhooks",
        COLUMNS["webhook"],
        "Webhooks: signed HTTP calls for the events of a tenant's subtree.",
        ("tenant_id",),
    ),
}
inbox, webhook = COMMANDS["notification"], COMMANDS["webhook"]


@inbox.command("list")
def notification_list(
    unread: Annotated[bool, Opt("--unread", help="only unread ones")] = False,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    """Your notifications, newest first."""
    filters = {"unread": "true"} if unread else {}
    items = Client.from_login().collect("/notifications", limit, **filters)
    show(items, COLUMNS["notification"], output)


@inbox.command("show")
def notification_show(notification_id: str, output: OutputOption = Format.table) -> None:
    answer = Client.from_login().get(f"/notifications/{notification_id}")
    show(answer, [*COLUMNS["notification"], "body"], output)


@inbox.command("read")
def notification_read(
    notification_id: Annotated[str | None, typer.Argument(help="one notification")] = None,
    all_: Annotated[bool, Opt("--all", help="every unread notification")] = False,
) -> None:
    """Mark one notification, or all of them, read."""
    if all_ == (notification_id is not None):
        raise typer.BadParameter("give a notification id or --all, not both")
    client = Client.from_login()
    if all_:
        marked = client.post("/notifications/actions", {"action": "read-all"})["marked"]
        typer.echo(f"marked {marked} notification(s) read")
    else:
        client.post(f"/notifications/{notification_id}/actions", {"action": "read"})
        typer.echo(f"marked {notification_id} read")


@webhook.command("create")
def webhook_create(
    url: Annotated[str, Opt(help="http or https")],
    event: Annotated[
        list[str] | None, Opt(help='an event name or prefix like "order.*" (repeatable; none: all)')
    ] = None,
    tenant: Annotated[str | None, Opt(help="tenant id (default: yours)")] = None,
    secret: Annotated[str | None, Opt(help="the signing secret (default: generated)")] = None,
    description: Annotated[str | None, Opt()] = None,
    disabled: Annotated[bool, Opt("--disabled", help="create it switched off")] = False,
    output: OutputOption = Format.table,
) -> None:
    """A webhook; its signing secret is printed this once."""
    body = given(url=url, events=event, tenant_id=tenant, secret=secret, description=description)
    answer = Client.from_login().post("/webhooks", body | {"enabled": not disabled})
    show(answer, [*COLUMNS["webhook"], "secret"], output)


@webhook.command("deliveries")
def webhook_deliveries(
    webhook_id: str, limit: Limit = None, output: OutputOption = Format.table
) -> None:
    """The webhook's deliveries, newest first."""
    items = Client.from_login().collect(f"/webhooks/{webhook_id}/deliveries", limit)
    show(items, COLUMNS["delivery"], output)
