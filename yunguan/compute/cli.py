"""``yunguan flavor|image|instance …``: the compute commands."""

from typing import Annotated

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given, noun_app

Opt = typer.Option
Name = Annotated[str, typer.Argument(help="name")]
Wait = Annotated[bool, Opt(help="wait for the operation to finish, with a progress bar")]

COLUMNS = {
    "flavor": ["id", "name", "vcpus", "memory_mb", "disk_gb", "gpus", "baremetal"],
    "image": ["id", "name", "os_type", "format", "min_disk_gb", "visibility", "locations"],
    "instance": ["id", "name", "state", "ip", "zone_id", "flavor_id", "host_id", "error_reason"],
    "volume": ["id", "name", "size_gb", "state", "zone_id", "instance_id", "device"],
    "snapshot": ["id", "name", "volume_id", "size_gb", "state"],
}
OPERATION = ["id", "kind", "target_id", "state", "step", "progress", "error"]
COMMANDS = {
    "flavor": noun_app("/flavors", COLUMNS["flavor"], "Flavors: machine sizes.", ("name",)),
    "image": noun_app("/images", COLUMNS["image"], "Images and templates.", ("visibility",)),
    "instance": noun_app(
        "/instances",
        COLUMNS["instance"],
        "Instances: virtual machines, bare-metal servers, public-cloud instances.",
        ("state", "zone_id", "vxnet_id", "host_id"),
        deletes=False,
    ),
    "volume": noun_app(
        "/volumes",
        COLUMNS["volume"],
        "Volumes: data disks, attached to at most one instance.",
        ("state", "zone_id", "instance_id"),
        deletes=False,
    ),
    "snapshot": noun_app(
        "/snapshots",
        COLUMNS["snapshot"],
        "Snapshots: point-in-time copies of volumes.",
        ("volume_id", "state"),
        deletes=False,
    ),
}
instance, volume, snapshot = COMMANDS["instance"], COMMANDS["volume"], COMMANDS["snapshot"]


@COMMANDS["flavor"].command("create")
def flavor_create(
    name: Name,
    vcpus: Annotated[int, Opt()],
    memory_mb: Annotated[int, Opt("--memory-mb")],
    disk_gb: Annotated[int, Opt("--disk-gb")] = 0,
    gpus: Annotated[int, Opt()] = 0,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb, gpus=gpus)
    show(Client.from_login().post("/flavors", body), COLUMNS["flavor"], output)


@COMMANDS["image"].command("create")
def image_create(
    name: Name,
    zone: Annotated[
        list[str], Opt(help="ZONE_ID=LOCATION where it is available (repeatable; '' for PXE)")
    ],
    image_format: Annotated[str, Opt("--format", help="qcow2, raw, ami or pxe")] = "qcow2",
    public: Annotated[bool, Opt(help="shared with every tenant (platform admins)")] = False,
    min_disk_gb: Annotated[int, Opt("--min-disk-gb")] = 0,
    kernel: Annotated[str | None, Opt(help="direct kernel boot: the kernel's path")] = None,
    initrd: Annotated[str | None, Opt()] = None,
    cmdline: Annotated[str | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    locations = dict(item.partition("=")[::2] for item in zone)
    body = given(name=name, format=image_format, min_disk_gb=min_disk_gb, locations=locations)
    body["visibility"] = "public" if public else "private"
    body["properties"] = given(kernel=kernel, initrd=initrd, cmdline=cmdline)
    show(Client.from_login().post("/images", body), COLUMNS["image"], output)


@instance.command("create")
def instance_create(
    name: Name,
    flavor: Annotated[str, Opt(help="flavor id")],
    image: Annotated[str, Opt(help="image id")],
    zone: Annotated[str | None, Opt(help="zone id (default: chosen)")] = None,
    vxnet: Annotated[str | None, Opt(help="vxnet id (default: your first in the zone)")] = None,
    count: Annotated[int, Opt(min=1, max=100)] = 1,
    tenant: Annotated[str | None, Opt(help="tenant id (default: yours)")] = None,
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    """Provision ``count`` instances; waits until each runs (or fails)."""
    client = Client.from_login()
    body = given(name=name, flavor_id=flavor, image_id=image, zone_id=zone, vxnet_id=vxnet)
    body |= given(count=count, tenant_id=tenant)
    answer = client.post("/instances", body)
    accepted = answer.get("items", [answer])
    if wait:
        for item in accepted:
            client.wait(item["operation"])
    rows = [client.get(f"/instances/{a['resource']['id']}") for a in accepted]
    show(rows if count > 1 else rows[0], COLUMNS["instance"], output)


def _long(method: str, path: str, body: dict | None, wait: bool, output: Format) -> None:
    client = Client.from_login()
    accepted = client.post(path, body or {}) if method == "post" else client.delete(path)
    operation = client.wait(accepted["operation"]) if wait else accepted["operation"]
    show(operation, OPERATION, output)


def _made(noun: str, body: dict, wait: bool, output: Format) -> None:
    """Create through a long operation, then show the resource as it ended."""
    client = Client.from_login()
    accepted = client.post(f"/{noun}s", body)
    if wait:
        client.wait(accepted["operation"])
    show(client.get(f"/{noun}s/{accepted['resource']['id']}"), COLUMNS[noun], output)


def _action(name: str) -> None:
    @instance.command(name)
    def act(instance_id: str, wait: Wait = True, output: OutputOption = Format.table) -> None:
        _long("post", f"/instances/{instance_id}/actions", {"action": name}, wait, output)

    act.__doc__ = f"{name.capitalize()} an instance."


for _name in ("start", "stop", "reboot"):
    _action(_name)


@instance.command("resize")
def instance_resize(
    instance_id: str,
    flavor: Annotated[str, Opt(help="the new flavor id")],
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    """Resize a stopped instance to another flavor."""
    body = {"action": "resize", "flavor_id": flavor}
    _long("post", f"/instances/{instance_id}/actions", body, wait, output)


@instance.command("migrate")
def instance_migrate(
    instance_id: str,
    live: Annotated[bool, Opt(help="while it runs (else it must be stopped)")] = False,
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    """Move an instance to another host of its provider."""
    body = {"action": "live-migrate" if live else "migrate"}
    _long("post", f"/instances/{instance_id}/actions", body, wait, output)


@instance.command("delete")
def instance_delete(instance_id: str, wait: Wait = True, output: OutputOption = Format.table):
    """Delete an instance: its machine, port, placement and quota are given back."""
    _long("delete", f"/instances/{instance_id}", None, wait, output)


@instance.command("console")
def instance_console(instance_id: str) -> None:
    """The machine's console log."""
    typer.echo(Client.from_login().get(f"/instances/{instance_id}/console")["output"])


@instance.command("events")
def instance_events(instance_id: str, output: OutputOption = Format.table) -> None:
    events = Client.from_login().get(f"/instances/{instance_id}/events")
    show(events, ["at", "kind", "message"], output)


@volume.command("create")
def volume_create(
    name: Name,
    size_gb: Annotated[int, Opt("--size-gb")],
    zone: Annotated[str | None, Opt(help="zone id (default: the instance's, or chosen)")] = None,
    instance_id: Annotated[str | None, Opt("--instance", help="attach it once made")] = None,
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, size_gb=size_gb, zone_id=zone, instance_id=instance_id)
    _made("volume", body, wait, output)


@volume.command("attach")
def volume_attach(
    volume_id: str,
    instance_id: Annotated[str, Opt("--instance")],
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    body = {"action": "attach", "instance_id": instance_id}
    _long("post", f"/volumes/{volume_id}/actions", body, wait, output)


@volume.command("detach")
def volume_detach(volume_id: str, wait: Wait = True, output: OutputOption = Format.table):
    _long("post", f"/volumes/{volume_id}/actions", {"action": "detach"}, wait, output)


@volume.command("extend")
def volume_extend(
    volume_id: str,
    size_gb: Annotated[int, Opt("--size-gb", help="the new, larger size")],
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    body = {"action": "extend", "size_gb": size_gb}
    _long("post", f"/volumes/{volume_id}/actions", body, wait, output)


@volume.command("delete")
def volume_delete(volume_id: str, wait: Wait = True, output: OutputOption = Format.table):
    _long("delete", f"/volumes/{volume_id}", None, wait, output)


@snapshot.command("create")
def snapshot_create(
    name: Name,
    volume_id: Annotated[str, Opt("--volume")],
    wait: Wait = True,
    output: OutputOption = Format.table,
) -> None:
    _made("snapshot", {"name": name, "volume_id": volume_id}, wait, output)


@snapshot.command("delete")
def snapshot_delete(snapshot_id: str, wait: Wait = True, output: OutputOption = Format.table):
    _long("delete", f"/snapshots/{snapshot_id}", None, wait, output)
