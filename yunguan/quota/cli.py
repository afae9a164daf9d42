"""``yunguan quota …``: the quota tree, limits, dry runs and reservations."""

from typing import Annotated

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given

Opt = typer.Option
COLUMNS = ["tenant_id", "resource", "guarantee", "lend_limit", "borrow_limit", "cap", "weight"]
COLUMNS += ["used", "reserved", "subtree_usage", "free", "borrowed", "lent", "pending", "slack"]
COLUMNS += ["over_quota"]

Resource = Annotated[str, Opt(help="resource class, e.g. vcpus, memory_mb, volume_gb")]
Amount = Annotated[int | None, Opt(help="empty: unlimited")]

quota = typer.Typer(help="Hierarchical quotas: guarantees, lending, borrowing, caps.")


@quota.command("tree")
def tree(
    resource: Resource = "vcpus",
    parent: Annotated[str | None, Opt(help="only the children of this tenant")] = None,
    limit: Annotated[int | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    """Every configured or used tenant for one resource class."""
    rows = Client.from_login().collect("/quotas", limit, resource=resource, parent_id=parent)
    show(rows, COLUMNS, output)


@quota.command("show")
def show_tenant(tenant_id: str, output: OutputOption = Format.table) -> None:
    """A tenant's quota, one row per resource class."""
    show(Client.from_login().get(f"/quotas/{tenant_id}"), COLUMNS, output)


@quota.command("set")
def set_limits(
    tenant_id: str,
    resource: Resource = "vcpus",
    guarantee: Amount = None,
    own_share: Annotated[int | None, Opt()] = None,
    lend_limit: Amount = None,
    borrow_limit: Amount = None,
    cap: Amount = None,
    weight: Annotated[int | None, Opt()] = None,
    unlimited: Annotated[
        list[str] | None, Opt(help="set this limit back to unlimited (repeatable)")
    ] = None,
    force: Annotated[bool, Opt(help="accept limits below current usage")] = False,
    output: OutputOption = Format.table,
) -> None:
    body = given(
        resource=resource,
        guarantee=guarantee,
        own_share=own_share,
        lend_limit=lend_limit,
        borrow_limit=borrow_limit,
        cap=cap,
        weight=weight,
    )
    body.update(dict.fromkeys(unlimited or []))
    if force:
        body["force"] = True
    show(Client.from_login().patch(f"/quotas/{tenant_id}", body), COLUMNS, output)


@quota.command("check")
def check(
    tenant_id: str,
    amount: Annotated[list[str], Opt(help="RESOURCE=N (repeatable), e.g. vcpus=4")],
    output: OutputOption = Format.table,
) -> None:
    """Would these amounts be admitted now? Changes nothing."""
    try:
        amounts = {k: int(v) for k, v in (a.split("=", 1) for a in amount)}
    except ValueError:
        raise typer.BadParameter("use RESOURCE=N, e.g. vcpus=4", param_hint="--amount")
    answer = Client.from_login().post(
        "/quotas/dry-run", {"tenant_id": tenant_id, "amounts": amounts}
    )
    if output is Format.json:
        show(answer, [], output)
        return
    show(answer["verdicts"], ["resource", "amount", "admitted", "refused_at", "reason"], output)
    if answer["reclaim"]:
        typer.echo(f"a reclaim would stop: {', '.join(answer['reclaim'])}")
    elif not answer["admitted"]:
        typer.echo("nothing can be reclaimed for it")


@quota.command("reclaims")
def reclaims(
    tenant: Annotated[str | None, Opt(help="tenant id (the victims')")] = None,
    state: Annotated[str | None, Opt(help="notified, stopped or cancelled")] = None,
    output: OutputOption = Format.table,
) -> None:
    """Notices to workloads that must give borrowed capacity back."""
    rows = Client.from_login().collect("/quotas/reclaims", None, tenant_id=tenant, state=state)
    show(rows, ["id", "tenant_id", "victim_id", "claim_id", "amounts", "state", "deadline"], output)
