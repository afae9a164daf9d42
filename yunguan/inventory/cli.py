"""``yunguan region|zone|pod|cluster|host|storage-pool …``: the inventory commands."""

from decimal import Decimal
from typing import Annotated, Any

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show

Limit = Annotated[int | None, typer.Option(help="at most this many rows")]
Opt = typer.Option

COLUMNS = {
    "region": ["id", "name", "description"],
    "zone": ["id", "name", "region_id", "visibility", "tenant_ids"],
    "pod": ["id", "name", "zone_id"],
    "cluster": ["id", "name", "pod_id", "hypervisor", "cpu_overcommit", "memory_overcommit"],
    "host": [
        "id",
        "name",
        "cluster_id",
        "state",
        "power_state",
        "cpu_cores",
        "memory_mb",
        "used_vcpus",
        "vcpu_limit",
        "used_memory_mb",
        "memory_limit_mb",
        "traits",
    ],
    "storage-pool": ["id", "name", "kind", "zone_id", "cluster_id", "total_gb", "allocated_gb"],
}
CAPACITY_COLUMNS = ["level", "name", "hosts", "vcpus", "memory_mb", "disk_gb", "gpus"]


def given(**fields: Any) -> dict[str, Any]:
    """The options the user gave (None means "not given")."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items() if v is not None}


def noun_app(
    path: str,
    columns: list[str],
    help_text: str,
    filters: tuple[str, ...] = (),
    capacity: bool = False,
    deletes: bool = True,
) -> typer.Typer:
    """A noun's sub-command with list, show, delete (and capacity for the topology). Nouns
    whose deletion is a long operation (``deletes=False``) define their own ``delete``."""
    app = typer.Typer(help=help_text, no_args_is_help=True)

    @app.command("list")
    def list_items(
        filter_: Annotated[
            list[str] | None, Opt("--filter", help=f"KEY=VALUE; keys: {', '.join(filters)}")
        ] = None,
        limit: Limit = None,
        output: OutputOption = Format.table,
    ) -> None:
        pairs = dict(item.split("=", 1) for item in filter_ or [] if "=" in item)
        show(Client.from_login().collect(path, limit, **pairs), columns, output)

    @app.command("show")
    def show_item(item_id: str, output: OutputOption = Format.table) -> None:
        show(Client.from_login().get(f"{path}/{item_id}"), columns, output)

    if deletes:

        @app.command("delete")
        def delete_item(item_id: str) -> None:
            Client.from_login().delete(f"{path}/{item_id}")
            typer.echo(f"deleted {item_id}")

    if capacity:

        @app.command("capacity")
        def capacity_view(item_id: str, output: OutputOption = Format.table) -> None:
            """Total, limit (with overcommit), allocated and free, with the children's."""
            view = Client.from_login().get(f"{path}/{item_id}/capacity")
            if output is Format.json:
                show(view, [], output)
                return
            rows = [view, *view["children"]]
            show([_capacity_row(r) for r in rows], CAPACITY_COLUMNS, output)

    return app


def _capacity_row(view: dict[str, Any]) -> dict[str, Any]:
    row = {k: view[k] for k in ("level", "name")}
    row["hosts"] = f"{view['hosts_enabled']}/{view['hosts']}"
    for dimension in ("vcpus", "memory_mb", "disk_gb", "gpus"):
        d = view[dimension]
        row[dimension] = f"{d['allocated']}/{d['limit']} ({d['free']} free)"
    return row


def _topology_app(noun: str, help_text: str, filters: tuple[str, ...]) -> typer.Typer:
    return noun_app(f"/{noun}s", COLUMNS[noun], help_text, filters, capacity=True)


region = _topology_app("region", "Regions: the top of the topology.", ("name",))
zone = _topology_app("zone", "Zones: public or private.", ("region_id", "visibility"))
pod = _topology_app("pod", "Pods: racks or rows inside a zone.", ("zone_id",))
cluster = _topology_app("cluster", "Clusters of one hypervisor.", ("pod_id", "hypervisor"))
host = _topology_app("host", "Hypervisor and bare-metal hosts.", ("cluster_id", "state"))
storage_pool = noun_app(
    "/storage-pools", COLUMNS["storage-pool"], "Primary and secondary storage.", ("zone_id", "kind")
)

Name = Annotated[str, typer.Argument(help="name")]
Description = Annotated[str | None, Opt(help="free text")]
Ratio = Annotated[Decimal | None, Opt(help="overcommit ratio, e.g. 4")]


def _create(path: str, noun: str, body: dict[str, Any], output: Format) -> None:
    show(Client.from_login().post(path, body), COLUMNS[noun], output)


def _update(path: str, noun: str, item_id: str, body: dict[str, Any], output: Format) -> None:
    show(Client.from_login().patch(f"{path}/{item_id}", body), COLUMNS[noun], output)


@region.command("create")
def region_create(
    name: Name, description: Description = None, output: OutputOption = Format.table
) -> None:
    _create("/regions", "region", given(name=name, description=description), output)


@zone.command("create")
def zone_create(
    name: Name,
    region_id: Annotated[str, Opt("--region")],
    private: Annotated[bool, Opt(help="only the --tenant subtrees may use it")] = False,
    tenant: Annotated[list[str] | None, Opt(help="tenant id (repeatable)")] = None,
    description: Description = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, region_id=region_id, description=description, tenant_ids=tenant)
    body["visibility"] = "private" if private else "public"
    _create("/zones", "zone", body, output)


@zone.command("grant")
def zone_grant(
    zone_id: str,
    tenant: Annotated[list[str], Opt(help="tenant id (repeatable); replaces the grants")],
    output: OutputOption = Format.table,
) -> None:
    """Make a zone private to these tenants' subtrees."""
    _update("/zones", "zone", zone_id, {"visibility": "private", "tenant_ids": tenant}, output)


@pod.command("create")
def pod_create(
    name: Name,
    zone_id: Annotated[str, Opt("--zone")],
    description: Description = None,
    output: OutputOption = Format.table,
) -> None:
    _create("/pods", "pod", given(name=name, zone_id=zone_id, description=description), output)


@cluster.command("create")
def cluster_create(
    name: Name,
    pod_id: Annotated[str, Opt("--pod")],
    hypervisor: Annotated[str, Opt(help="kvm, vmware, xen, baremetal or public-cloud")] = "kvm",
    cpu_overcommit: Ratio = None,
    memory_overcommit: Ratio = None,
    disk_overcommit: Ratio = None,
    primary_pool: Annotated[str | None, Opt(help="shared primary storage pool id")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(
        name=name,
        pod_id=pod_id,
        hypervisor=hypervisor,
        cpu_overcommit=cpu_overcommit,
        memory_overcommit=memory_overcommit,
        disk_overcommit=disk_overcommit,
        primary_pool_id=primary_pool,
    )
    _create("/clusters", "cluster", body, output)


@cluster.command("update")
def cluster_update(
    cluster_id: str,
    cpu_overcommit: Ratio = None,
    memory_overcommit: Ratio = None,
    disk_overcommit: Ratio = None,
    primary_pool: Annotated[str | None, Opt(help="shared primary storage pool id")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(
        cpu_overcommit=cpu_overcommit,
        memory_overcommit=memory_overcommit,
        disk_overcommit=disk_overcommit,
        primary_pool_id=primary_pool,
    )
    _update("/clusters", "cluster", cluster_id, body, output)


@host.command("create")
def host_create(
    name: Name,
    cluster_id: Annotated[str, Opt("--cluster")],
    cores: Annotated[int, Opt(help="physical cores")],
    memory_mb: Annotated[int, Opt()],
    disk_gb: Annotated[int, Opt(help="local disk, all disks together")] = 0,
    disk_count: Annotated[int | None, Opt()] = None,
    sockets: Annotated[int | None, Opt(help="CPU count")] = None,
    mhz: Annotated[int | None, Opt(help="CPU frequency")] = None,
    gpus: Annotated[int | None, Opt()] = None,
    nics: Annotated[int | None, Opt()] = None,
    bmc: Annotated[str | None, Opt(help="BMC address (bare metal)")] = None,
    address: Annotated[str | None, Opt(help="management address")] = None,
    trait: Annotated[list[str] | None, Opt(help="repeatable")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(
        name=name,
        cluster_id=cluster_id,
        cpu_cores=cores,
        memory_mb=memory_mb,
        disk_gb=disk_gb,
        disk_count=disk_count,
        cpu_sockets=sockets,
        cpu_mhz=mhz,
        gpus=gpus,
        nics=nics,
        bmc_address=bmc,
        address=address,
        traits=trait,
    )
    _create("/hosts", "host", body, output)


def _host_state_command(state: str, help_text: str) -> None:
    def command(host_id: str, output: OutputOption = Format.table) -> None:
        _update("/hosts", "host", host_id, {"state": state}, output)

    command.__doc__ = help_text
    host.command({"enabled": "enable", "disabled": "disable"}.get(state, state))(command)


_host_state_command("enabled", "Let the host take new placements.")
_host_state_command("disabled", "Take the host out of placement.")
_host_state_command("maintenance", "Put the host in maintenance: no new placements.")


@host.command("set-traits")
def host_set_traits(
    host_id: str,
    trait: Annotated[list[str], Opt(help="repeatable; replaces the traits")],
    output: OutputOption = Format.table,
) -> None:
    _update("/hosts", "host", host_id, {"traits": trait}, output)


@host.command("evacuation-plan")
def host_evacuation_plan(host_id: str, output: OutputOption = Format.table) -> None:
    """Where each placement on the host would go if it had to be emptied now."""
    plan = Client.from_login().get(f"/hosts/{host_id}/evacuation-plan")
    if output is Format.json:
        show(plan, [], output)
        return
    show(plan["moves"], ["claim_id", "consumer_id", "to_host_id", "reason"], output)
    typer.echo("complete" if plan["complete"] else "incomplete: some placements have nowhere to go")


@storage_pool.command("create")
def pool_create(
    name: Name,
    kind: Annotated[str, Opt(help="primary or secondary")],
    zone_id: Annotated[str, Opt("--zone")],
    cluster_id: Annotated[str | None, Opt("--cluster", help="primary pools only")] = None,
    source: Annotated[str | None, Opt(help="file:///path is measured on refresh")] = None,
    total_gb: Annotated[int | None, Opt()] = None,
    overprovisioning: Ratio = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(
        name=name,
        kind=kind,
        zone_id=zone_id,
        cluster_id=cluster_id,
        source=source,
        total_gb=total_gb,
        overprovisioning=overprovisioning,
    )
    _create("/storage-pools", "storage-pool", body, output)


@storage_pool.command("refresh")
def pool_refresh(pool_id: str, output: OutputOption = Format.table) -> None:
    """Re-measure the pool now and recount its allocations."""
    answer = Client.from_login().post(f"/storage-pools/{pool_id}/actions", {"action": "refresh"})
    show(answer, COLUMNS["storage-pool"] + ["used_gb", "refreshed_at"], output)


COMMANDS = {
    "region": region,
    "zone": zone,
    "pod": pod,
    "cluster": cluster,
    "host": host,
    "storage-pool": storage_pool,
}
