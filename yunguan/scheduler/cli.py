"""``yunguan placement|placement-policy|placement-group …``: the scheduler's commands."""

import inspect
import json
from typing import Annotated

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given, noun_app

Opt = typer.Option
POLICY_COLUMNS = ["id", "name", "strategy", "zone_id", "tenant_id"]
GROUP_COLUMNS = ["id", "name", "tenant_id", "policy", "host_ids"]
CLAIM_COLUMNS = ["id", "host_id", "tenant_id", "consumer_id", "vcpus", "memory_mb", "disk_gb"]
MOVE_COLUMNS = ["claim_id", "from_host_id", "to_host_id", "reason"]

placement = typer.Typer(help="Placement: where things would go, and what holds capacity.")
policy = noun_app(
    "/placement-policies",
    POLICY_COLUMNS,
    "Placement policies: pack or spread, per zone or tenant subtree.",
    ("zone_id", "tenant_id", "strategy"),
)
group = noun_app(
    "/placement-groups", GROUP_COLUMNS, "Affinity and anti-affinity groups.", ("tenant_id",)
)


def request_body(
    tenant: Annotated[str, Opt(help="tenant id the placement is for")],
    vcpus: Annotated[int, Opt()] = 0,
    memory_mb: Annotated[int, Opt()] = 0,
    disk_gb: Annotated[int | None, Opt()] = None,
    gpus: Annotated[int | None, Opt()] = None,
    trait: Annotated[list[str] | None, Opt(help="required trait (repeatable)")] = None,
    zone: Annotated[str | None, Opt(help="zone id")] = None,
    hypervisor: Annotated[str | None, Opt()] = None,
    group_id: Annotated[str | None, Opt("--group", help="placement group id")] = None,
    baremetal: Annotated[
        str | None,
        Opt(
            help='bare-metal profile as JSON: {"cpu_count":2,"cpu_mhz":2600,"disk_count":2,'
            '"disk_size_gb":960,"memory_mb":262144}'
        ),
    ] = None,
) -> dict:
    body = given(
        tenant_id=tenant,
        disk_gb=disk_gb,
        gpus=gpus,
        traits=trait,
        zone_id=zone,
        hypervisor=hypervisor,
        group_id=group_id,
    )
    if baremetal:
        body["baremetal"] = json.loads(baremetal)
    else:
        body.update(vcpus=vcpus, memory_mb=memory_mb)
    return body


def _show_answer(answer: dict, output: Format) -> None:
    if output is Format.json:
        show(answer, [], output)
        return
    show(answer["filters"], ["filter", "before", "after"], output)
    verdict = f"{answer['host_name']} ({answer['host_id']})" if answer["fits"] else answer["reason"]
    typer.echo(f"{answer['strategy']}: {verdict}")


def _request_command(name: str, path: str, extra: list[inspect.Parameter], render) -> None:
    """A command whose options are those of ``request_body`` (plus ``extra``)."""

    def command(output: Format = Format.table, **options: object) -> None:
        consumer = options.pop("consumer", None)
        body = request_body(**options)  # type: ignore[arg-type]
        if consumer:
            body["consumer_id"] = consumer
        render(Client.from_login().post(path, body), output)

    output = inspect.Parameter(
        "output", inspect.Parameter.KEYWORD_ONLY, default=Format.table, annotation=OutputOption
    )
    parameters = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(request_body).parameters.values()
    ]
    command.__signature__ = inspect.Signature([*parameters, *extra, output])  # type: ignore[attr-defined]
    command.__doc__ = render.__doc__
    placement.command(name)(command)


def _show_claim(claim: dict, output: Format) -> None:
    """Place a request and hold the capacity (a claim)."""
    show(claim, CLAIM_COLUMNS, output)


_show_answer.__doc__ = "Where a request would go now, and what each filter left; claims nothing."
_request_command("dry-run", "/placement/dry-run", [], _show_answer)
_request_command(
    "claim",
    "/placement/claims",
    [
        inspect.Parameter(
            "consumer",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, Opt(help="who holds it, e.g. an instance id")],
        )
    ],
    _show_claim,
)


@placement.command("claims")
def claims(
    host: Annotated[str | None, Opt(help="host id")] = None,
    tenant: Annotated[str | None, Opt(help="tenant id")] = None,
    limit: Annotated[int | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    """Capacity held on hosts."""
    rows = Client.from_login().collect("/placement/claims", limit, host_id=host, tenant_id=tenant)
    show(rows, CLAIM_COLUMNS, output)


@placement.command("release")
def release(claim_id: str) -> None:
    """Give a claim's capacity back."""
    Client.from_login().delete(f"/placement/claims/{claim_id}")
    typer.echo(f"released {claim_id}")


@placement.command("rebalance-report")
def rebalance_report(
    threshold: Annotated[float, Opt(help="utilisation above which a host is overloaded")] = 0.8,
    zone: Annotated[str | None, Opt(help="zone id")] = None,
    output: OutputOption = Format.table,
) -> None:
    """Overloaded hosts and the moves that would bring them under the threshold."""
    report = Client.from_login().get(
        "/placement/rebalance-report", threshold=threshold, zone_id=zone
    )
    if output is Format.json:
        show(report, [], output)
        return
    show(report["overloaded"], ["host_id", "utilisation"], output)
    show(report["moves"], MOVE_COLUMNS, output)


@policy.command("create")
def policy_create(
    name: str,
    strategy: Annotated[str, Opt(help="pack or spread")],
    zone: Annotated[str | None, Opt(help="zone id")] = None,
    tenant: Annotated[str | None, Opt(help="tenant id (its whole subtree)")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, strategy=strategy, zone_id=zone, tenant_id=tenant)
    show(Client.from_login().post("/placement-policies", body), POLICY_COLUMNS, output)


@policy.command("set-strategy")
def policy_set_strategy(
    policy_id: str,
    strategy: Annotated[str, typer.Argument(help="pack or spread")],
    output: OutputOption = Format.table,
) -> None:
    answer = Client.from_login().patch(f"/placement-policies/{policy_id}", {"strategy": strategy})
    show(answer, POLICY_COLUMNS, output)


@group.command("create")
def group_create(
    name: str,
    tenant: Annotated[str, Opt(help="tenant id")],
    policy_name: Annotated[str, Opt("--policy", help="affinity or anti-affinity")],
    output: OutputOption = Format.table,
) -> None:
    body = {"name": name, "tenant_id": tenant, "policy": policy_name}
    show(Client.from_login().post("/placement-groups", body), GROUP_COLUMNS, output)


COMMANDS = {"placement": placement, "placement-policy": policy, "placement-group": group}
