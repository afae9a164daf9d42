"""Instances through the API on a public cloud (EC2, against moto's server) and on bare
metal (Redfish, against sushy-tools' emulator)."""

from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support import moto_server, network, redfish_emulator, topology
from tests.support.api import Api
from tests.support.compute import create, provider
from tests.support.redfish_emulator import NODES, Emulator
from tests.support.waiting import wait_operation
from yunguan.core import secrets
from yunguan.core.db import Database
from yunguan.providers.models import Provider

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("workflows")]
moto_url = moto_server.moto_url  # the fixtures, found by pytest under these names
redfish = redfish_emulator.redfish_emulator
REGION = "us-east-1"
KEYS = {"access_key_id": "AKIDYUNGUAN", "secret_access_key": "cloud-secret-value"}


def _zone(admin: Api, hypervisor: str) -> tuple[dict, dict]:
    zone = topology.zone(admin, topology.region(admin)["id"], f"{hypervisor}-zone")
    cluster = topology.cluster(admin, zone["id"], f"{hypervisor}-1", hypervisor=hypervisor)
    vnis = {"name": "vni", "zone_id": zone["id"], "network_type": "vxlan"}
    admin.ok(admin.post("/vlan-pools", {**vnis, "first_id": 100, "last_id": 200}), 201)
    return zone, cluster


def _provision(admin: Api, root_id: str, zone: dict, flavor: dict, image: dict) -> tuple:
    team = admin.tenant(root_id, "Team")
    member = admin.as_user(team["id"], "dev", ["member"])
    vpc = network.vpc(member, zone["id"], "10.3.0.0/16")
    network.vxnet(member, vpc["id"], "10.3.1.0/24")
    accepted = create(member, {"flavor": flavor, "image": image}, "node")
    operation = wait_operation(member, accepted["operation"]["id"], timeout=120)
    assert operation["state"] == "succeeded", operation
    return member, member.ok(member.get(f"/instances/{accepted['resource']['id']}"))


def _delete(member: Api, instance: dict) -> None:
    accepted = member.ok(member.delete(f"/instances/{instance['id']}"), 202)
    assert wait_operation(member, accepted["operation"]["id"], 120)["state"] == "succeeded"


def test_an_ec2_instance_through_the_api(
    admin: Api, db: Database, root_id: str, moto_url: str
) -> None:
    zone, cluster = _zone(admin, "public-cloud")
    config = {"region": REGION, "endpoint_url": moto_url}
    made = provider(admin, cluster["id"], "ec2", config=config, secret=KEYS)
    assert made["has_credentials"] and "secret" not in made
    assert KEYS["secret_access_key"] not in str(admin.ok(admin.get("/providers")))
    with db.session(write=False) as session:
        stored = session.get(Provider, made["id"]).secret
    assert stored and KEYS["secret_access_key"] not in stored  # sealed at rest
    assert secrets.unseal(stored)["secret_access_key"] == KEYS["secret_access_key"]
    ec2: Any = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto_url,
        **{
            "aws_access_key_id": KEYS["access_key_id"],
            "aws_secret_access_key": KEYS["secret_access_key"],
        },
    )
    zones = {z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": cluster["id"]}))["items"]
    assert {h["external_id"] for h in hosts} == zones
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    flavor = admin.ok(admin.post("/flavors", {"name": "c1", "vcpus": 1, "memory_mb": 1024}), 201)
    body = {
        "name": "cloud",
        "format": "ami",
        "visibility": "public",
        "locations": {zone["id"]: ami},
    }
    image = admin.ok(admin.post("/images", body), 201)

    member, instance = _provision(admin, root_id, zone, flavor, image)
    assert instance["state"] == "running"
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:yunguan:instance-id", "Values": [instance["id"]]}]
    )["Reservations"]
    (machine,) = [i for r in reservations for i in r["Instances"]]
    assert machine["State"]["Name"] == "running" and machine["ImageId"] == ami
    _delete(member, instance)
    state = ec2.describe_instances(InstanceIds=[machine["InstanceId"]])["Reservations"][0]
    assert state["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")


def test_a_bare_metal_server_through_the_api(
    admin: Api, root_id: str, redfish: Emulator, tmp_path: Path
) -> None:
    zone, cluster = _zone(admin, "baremetal")
    secret = {"username": redfish.username, "password": redfish.password}
    provider(admin, cluster["id"], "redfish", config={"endpoint": redfish.url}, secret=secret)
    hosts = admin.ok(admin.get("/hosts", params={"cluster_id": cluster["id"]}))["items"]
    assert len(hosts) == len(NODES)
    large = NODES[1]
    profile = {
        "cpu_count": large.sockets,
        "cpu_mhz": large.mhz,
        "disk_count": len(large.disks_gb),
        "disk_size_gb": large.disks_gb[0],
        "memory_mb": large.memory_gib * 1024,
    }
    flavor = admin.ok(admin.post("/flavors", {"name": "metal.large", "baremetal": profile}), 201)
    body = {"name": "pxe", "format": "pxe", "visibility": "public", "locations": {zone["id"]: ""}}
    image = admin.ok(admin.post("/images", body), 201)

    member, instance = _provision(admin, root_id, zone, flavor, image)
    host = admin.ok(admin.get(f"/hosts/{instance['host_id']}"))
    assert host["external_id"] == large.uuid and instance["ip"].startswith("10.3.1.")
    system = redfish.get(large.path)
    assert system["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    assert system["PowerState"] in ("On", "PoweringOn")
    _delete(member, instance)
    redfish.wait_power(large, "Off")
    assert redfish.get(large.path)["Boot"]["BootSourceOverrideTarget"] == "Hdd"
