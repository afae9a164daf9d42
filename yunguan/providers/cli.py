"""``yunguan provider …``: register and sync providers (platform administrators)."""

import json
from typing import Annotated, Any

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given, noun_app

Opt = typer.Option
COLUMNS = ["id", "name", "kind", "zone_id", "state", "synced_at", "sync_error", "has_credentials"]
OPERATION = ["id", "kind", "target_id", "state", "step", "progress", "error"]
provider = noun_app(
    "/providers",
    COLUMNS,
    "Providers: the hypervisors, clouds and BMCs Yunguan drives.",
    ("kind", "zone_id", "state"),
)
COMMANDS = {"provider": provider}


def _json(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{what} is not JSON: {exc}")
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{what} must be a JSON object")
    return value


@provider.command("register")
def provider_register(
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, Opt(help="simulator, libvirt, ec2 or redfish")],
    cluster: Annotated[str, Opt(help="cluster id its hosts go into")],
    config: Annotated[str | None, Opt(help="the driver's settings, as JSON")] = None,
    secret_file: Annotated[
        typer.FileText | None, Opt(help="credentials as a JSON file (stored encrypted)")
    ] = None,
    output: OutputOption = Format.table,
) -> None:
    """Register a provider and run its first inventory sync."""
    client = Client.from_login()
    body = given(name=name, kind=kind, cluster_id=cluster, config=_json(config, "--config"))
    body["secret"] = _json(secret_file.read() if secret_file else None, "--secret-file")
    accepted = client.post("/providers", body)
    client.wait(accepted["operation"])
    show(client.get(f"/providers/{accepted['resource']['id']}"), COLUMNS, output)


@provider.command("sync")
def provider_sync(provider_id: str, output: OutputOption = Format.table) -> None:
    """Collect the provider's inventory now and reconcile it."""
    client = Client.from_login()
    accepted = client.post(f"/providers/{provider_id}/actions", {"action": "sync"})
    show(client.wait(accepted["operation"]), OPERATION, output)


@provider.command("importable")
def provider_importable(provider_id: str, output: OutputOption = Format.table) -> None:
    """Machines the provider has that Yunguan did not make."""
    found = Client.from_login().get(f"/providers/{provider_id}")["importable"]
    show(found, ["external_id", "name", "state", "host", "vcpus", "memory_mb"], output)


@provider.command("import")
def provider_import(
    provider_id: str,
    external_id: Annotated[str, Opt("--machine", help="the machine's id at the provider")],
    tenant: Annotated[str, Opt()],
    flavor: Annotated[str, Opt()],
    image: Annotated[str, Opt()],
    name: Annotated[str | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    """Adopt a listed machine as an instance of the tenant."""
    machine = given(external_id=external_id, tenant_id=tenant, flavor_id=flavor, image_id=image)
    machine |= given(name=name)
    body = {"action": "import", "machine": machine}
    answer = Client.from_login().post(f"/providers/{provider_id}/actions", body)
    show(answer, ["id", "name", "state", "tenant_id", "host_id"], output)
