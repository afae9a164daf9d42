"""The ec2 driver against moto's EC2 emulator (a server on 127.0.0.1, one per test worker).

moto does not honour ``ClientToken`` (a repeated RunInstances or CreateVolume makes a second
one), so the crash tests prove the tag lookup and only check that the token reaches EC2. moto
finishes every volume change at once (attached, detached, modified: no ``attaching`` nor
``modifying`` state), and checks neither a volume's zone against its machine's on attach nor a
shrinking ModifyVolume; the waits are therefore tested with botocore's stubber, and zones and
shrinking only on the driver's side.
"""

import secrets
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from tests.providers.contract import DriverContract, wait_state
from tests.support import moto_server
from yunguan.providers.base import (
    RUNNING,
    STOPPED,
    Disk,
    ImageRef,
    InstanceSpec,
    Machine,
    MachineNotFound,
    ProviderError,
    VolumeSpec,
)
from yunguan.providers.ec2 import Config, Ec2Driver, Rule, Secret

moto_url = moto_server.moto_url  # the session's server, found by pytest under this name
REGION = "us-east-1"
SECRET = Secret(access_key_id="AKIDTESTING", secret_access_key="not-a-real-secret")


def new_driver(url: str, **config: Any) -> Ec2Driver:
    return Ec2Driver(Config(region=REGION, endpoint_url=url, **config), SECRET)


@pytest.fixture(scope="module")
def ec2(moto_url: str) -> Any:
    """A plain boto3 client, to check what the driver did and to act out of band."""
    return boto3.session.Session().client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="AKIDTESTING",
        aws_secret_access_key="not-a-real-secret",
    )


@pytest.fixture(scope="module")
def ami(ec2: Any) -> str:
    return ec2.describe_images()["Images"][0]["ImageId"]


@pytest.fixture
def driver(moto_url: str) -> Iterator[Ec2Driver]:
    made = new_driver(moto_url)
    yield made
    made.close()


@pytest.fixture
def spec(ami: str) -> InstanceSpec:
    return InstanceSpec(
        instance_id=f"inst-{secrets.token_hex(6)}",
        name="web-1",
        vcpus=1,
        memory_mb=1024,
        disk_gb=20,
        image=ImageRef(id="img-amazon", name="amazon linux", location=ami),
    )


def describe(ec2: Any, external_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[external_id])["Reservations"][0]["Instances"][0]


def tagged(ec2: Any, instance_id: str) -> list[str]:
    """Live EC2 instances tagged with our ``instance_id``."""
    filters = [
        {"Name": "tag:yunguan:instance-id", "Values": [instance_id]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]},
    ]
    reservations = ec2.describe_instances(Filters=filters)["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


class TestEc2Contract(DriverContract):
    pass


class TestCreate:
    def test_survives_a_crash(self, moto_url: str, ec2: Any, spec: InstanceSpec) -> None:
        made = new_driver(moto_url).create_instance(spec)
        again = new_driver(moto_url).create_instance(spec)  # a new process retrying the step
        assert again.external_id == made.external_id
        assert tagged(ec2, spec.instance_id) == [made.external_id]
        assert describe(ec2, made.external_id)["ClientToken"] == spec.instance_id

    def test_tags_type_disk_and_zone(self, driver: Ec2Driver, ec2: Any, spec: InstanceSpec) -> None:
        made = driver.create_instance(spec)
        raw = describe(ec2, made.external_id)
        tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
        assert tags == {"Name": "web-1", "yunguan:instance-id": spec.instance_id}
        assert raw["InstanceType"] == "t3.micro"  # the smallest with 1 vCPU and 1 GiB
        assert (made.name, made.instance_id) == ("web-1", spec.instance_id)
        assert (made.vcpus, made.memory_mb) == (2, 1024)
        assert made.host == raw["Placement"]["AvailabilityZone"]
        volume_id = raw["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        assert volume["Size"] == 20
        assert raw["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] is True

    def test_explicit_type_and_zone(self, driver: Ec2Driver, ec2: Any, spec: InstanceSpec) -> None:
        zone = driver.collect().hosts[-1].external_id
        made = driver.create_instance(replace(spec, host=zone, ex={"instance_type": "t3.large"}))
        raw = describe(ec2, made.external_id)
        assert (raw["InstanceType"], made.host) == ("t3.large", zone)

    def test_network_and_key_defaults(
        self, moto_url: str, ec2: Any, spec: InstanceSpec, driver: Ec2Driver
    ) -> None:
        vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
        placed = new_driver(moto_url, ex_subnet_id=subnet_id)
        group = placed.ex_ensure_security_group("yg-app", "app servers", [Rule("tcp", 80, 80)])
        assert group.vpc_id == vpc_id
        driver.ex_create_key_pair("yg-ops")
        configured = new_driver(
            moto_url,
            ex_subnet_id=subnet_id,
            ex_security_group_ids=[group.group_id],
            ex_key_name="yg-ops",
        )
        raw = describe(ec2, configured.create_instance(spec).external_id)
        assert (raw["SubnetId"], raw["VpcId"], raw["KeyName"]) == (subnet_id, vpc_id, "yg-ops")
        assert [g["GroupId"] for g in raw["SecurityGroups"]] == [group.group_id]

    def test_no_type_fits(self, driver: Ec2Driver, spec: InstanceSpec) -> None:
        huge = replace(spec, vcpus=512)
        with pytest.raises(ProviderError, match="no instance type in the table fits 512"):
            driver.create_instance(huge)
        assert driver.find_instance(spec.instance_id) is None

    def test_unknown_image(self, driver: Ec2Driver, spec: InstanceSpec) -> None:
        missing = ImageRef(id="img-gone", name="gone", location="ami-00000000")
        with pytest.raises(ProviderError, match="ami-00000000") as failed:
            driver.create_instance(replace(spec, image=missing))
        assert not failed.value.transient


class TestStates:
    def test_terminated_is_gone(self, driver: Ec2Driver, spec: InstanceSpec) -> None:
        made = driver.create_instance(spec)
        driver.delete_instance(made.external_id)
        with pytest.raises(MachineNotFound):
            driver.get_instance(made.external_id)
        assert made.external_id not in {m.external_id for m in driver.collect().machines}

    def test_console_log_is_decoded(self, driver: Ec2Driver, spec: InstanceSpec) -> None:
        made = driver.create_instance(spec)
        assert "Linux version" in driver.console_log(made.external_id)

    def test_resize_a_stopped_machine(self, driver: Ec2Driver, spec: InstanceSpec) -> None:
        made = driver.create_instance(spec)
        wait_state(driver, made.external_id, RUNNING)
        with pytest.raises(ProviderError, match="stop it to resize"):
            driver.resize_instance(made.external_id, vcpus=4, memory_mb=8192)
        driver.stop_instance(made.external_id)
        wait_state(driver, made.external_id, STOPPED)
        resized = driver.resize_instance(made.external_id, vcpus=4, memory_mb=8192)
        assert (resized.vcpus, resized.memory_mb) == (4, 16384)  # t3.xlarge
        with pytest.raises(MachineNotFound):
            driver.resize_instance("i-0123456789abcdef0", vcpus=1, memory_mb=512)


class TestKeyPairs:
    def test_create_import_and_delete(self, driver: Ec2Driver, ec2: Any) -> None:
        made = driver.ex_create_key_pair("yg-made")
        assert made.private_key and "PRIVATE KEY" in made.private_key
        assert "PRIVATE" not in repr(made)
        public = ed25519.Ed25519PrivateKey.generate().public_key()
        openssh = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        imported = driver.ex_create_key_pair("yg-imported", public_key=openssh)
        assert imported.private_key is None and imported.fingerprint
        listed = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
        assert {"yg-made", "yg-imported"} <= listed
        with pytest.raises(ProviderError, match="already exists"):
            driver.ex_create_key_pair("yg-made")

        driver.ex_delete_key_pair("yg-made")
        driver.ex_delete_key_pair("yg-imported")
        driver.ex_delete_key_pair("yg-imported")  # gone already: fine
        listed = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
        assert not {"yg-made", "yg-imported"} & listed


def ingress(ec2: Any, group_id: str) -> list[tuple[str, int | None, int | None, str]]:
    """The group's ingress rules as EC2 keeps them, one (protocol, ports, CIDR) per entry."""
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted(
        (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    )


class TestSecurityGroups:
    RULES = (
        Rule("tcp", 22, 22),
        Rule("tcp", 443, 443, "10.0.0.0/8"),
        Rule("all", cidr="10.1.0.0/16"),
    )

    def test_ensure_is_idempotent(self, driver: Ec2Driver, ec2: Any) -> None:
        first = driver.ex_ensure_security_group("yg-web", "web servers", self.RULES)
        again = driver.ex_ensure_security_group("yg-web", "web servers", self.RULES)
        assert again.group_id == first.group_id and again.rules == self.RULES
        assert ingress(ec2, first.group_id) == [
            ("-1", None, None, "10.1.0.0/16"),
            ("tcp", 22, 22, "0.0.0.0/0"),
            ("tcp", 443, 443, "10.0.0.0/8"),
        ]
        named = [{"Name": "group-name", "Values": ["yg-web"]}]
        assert len(ec2.describe_security_groups(Filters=named)["SecurityGroups"]) == 1

    def test_ensure_revokes_what_is_no_longer_wanted(self, driver: Ec2Driver, ec2: Any) -> None:
        group = driver.ex_ensure_security_group("yg-db", "databases", self.RULES)
        postgres = Rule("tcp", 5432, 5432, "10.0.0.0/8")
        driver.ex_ensure_security_group("yg-db", "databases", [postgres])
        assert ingress(ec2, group.group_id) == [("tcp", 5432, 5432, "10.0.0.0/8")]

    def test_delete(self, driver: Ec2Driver, ec2: Any) -> None:
        group = driver.ex_ensure_security_group("yg-gone", "to delete", [])
        driver.ex_delete_security_group(group.group_id)
        driver.ex_delete_security_group(group.group_id)  # gone already: fine
        named = [{"Name": "group-name", "Values": ["yg-gone"]}]
        assert ec2.describe_security_groups(Filters=named)["SecurityGroups"] == []

    def test_rules_are_checked(self) -> None:
        with pytest.raises(ValueError, match="protocol"):
            Rule("sctp", 1, 2)
        with pytest.raises(ValueError, match="no ports"):
            Rule("all", 22, 22)


class TestElasticIps:
    def test_allocate_associate_disassociate_release(
        self, driver: Ec2Driver, ec2: Any, spec: InstanceSpec
    ) -> None:
        machine = driver.create_instance(spec)
        wait_state(driver, machine.external_id, RUNNING)
        address = driver.ex_allocate_address()
        assert address.public_ip and address.external_id is None

        bound = driver.ex_associate_address(address.allocation_id, machine.external_id)
        assert bound.external_id == machine.external_id and bound.association_id
        assert describe(ec2, machine.external_id)["PublicIpAddress"] == address.public_ip
        assert address.public_ip in driver.get_instance(machine.external_id).addresses

        freed = driver.ex_disassociate_address(address.allocation_id)
        assert freed.external_id is None and freed.association_id is None
        driver.ex_release_address(address.allocation_id)
        driver.ex_release_address(address.allocation_id)  # gone already: fine
        allocated = {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}
        assert address.allocation_id not in allocated


class TestCollect:
    def test_zones_are_hosts(self, driver: Ec2Driver, ec2: Any) -> None:
        zones = {z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}
        hosts = driver.collect().hosts
        assert {h.external_id for h in hosts} == zones
        assert {h.hypervisor for h in hosts} == {"public-cloud"}
        assert all(h.cpu_cores == 4096 and h.power_state == "on" for h in hosts)

    def test_machines_made_elsewhere_are_importable(
        self, driver: Ec2Driver, ec2: Any, ami: str
    ) -> None:
        made = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="m5.large")
        external_id = made["Instances"][0]["InstanceId"]
        listed = {m.external_id: m for m in driver.collect().machines}
        machine = listed[external_id]
        assert machine.instance_id is None and machine.name == external_id
        assert (machine.vcpus, machine.memory_mb) == (2, 8192)  # asked of DescribeInstanceTypes
        assert machine.host == made["Instances"][0]["Placement"]["AvailabilityZone"]


class TestErrors:
    def test_wrong_credentials(self) -> None:
        with moto_server.running() as url:
            moto_server.enable_authentication(url)
            with pytest.raises(ProviderError, match="credentials were rejected") as failed:
                new_driver(url).collect()
        assert not failed.value.transient
        assert "not-a-real-secret" not in str(failed.value)

    def test_unknown_region(self, moto_url: str) -> None:
        with pytest.raises(ProviderError, match="unknown region 'xx-nowhere-1'"):
            Ec2Driver(Config(region="xx-nowhere-1"), SECRET)
        elsewhere = Ec2Driver(Config(region="xx-nowhere-1", endpoint_url=moto_url), SECRET)
        with pytest.raises(ProviderError, match=r"xx-nowhere-1.*check endpoint_url and the region"):
            elsewhere.collect()

    def test_unreachable_endpoint_is_transient(self) -> None:
        with socket.socket() as closed:  # bound, never listening: connections are refused
            closed.bind(("127.0.0.1", 0))
            driver = new_driver(f"http://127.0.0.1:{closed.getsockname()[1]}")
            with pytest.raises(ProviderError, match="cannot reach") as failed:
                driver.get_instance("i-0123456789abcdef0")
        assert failed.value.transient

    @pytest.mark.parametrize(
        ("code", "status", "transient"),
        [
            ("RequestLimitExceeded", 503, True),
            ("SomethingBroke", 500, True),
            ("UnauthorizedOperation", 403, False),
        ],
    )
    def test_transient_or_not(
        self, driver: Ec2Driver, code: str, status: int, transient: bool
    ) -> None:
        """moto never throttles nor fails, so botocore's stubber answers as EC2 would (its
        answers skip botocore's retries)."""
        with Stubber(driver._client) as stub:
            stub.add_client_error("describe_instances", code, "no", http_status_code=status)
            with pytest.raises(ProviderError, match=code) as failed:
                driver.get_instance("i-0123456789abcdef0")
        assert failed.value.transient is transient

    def test_config_and_secret(self) -> None:
        with pytest.raises(ValidationError):
            Config(region=REGION, subnet="subnet-1234abcd")
        assert "not-a-real-secret" not in repr(SECRET)


# --- volumes and snapshots --------------------------------------------------------------------


def volume_spec(host: str | None = None, **ex: Any) -> VolumeSpec:
    return VolumeSpec(f"vol-{secrets.token_hex(6)}", "data", size_gb=4, host=host, ex=ex)


def described_volume(ec2: Any, external_id: str) -> dict[str, Any]:
    return ec2.describe_volumes(VolumeIds=[external_id])["Volumes"][0]


def tagged_volumes(ec2: Any, volume_id: str) -> list[str]:
    tag = {"Name": "tag:yunguan:volume-id", "Values": [volume_id]}
    return [v["VolumeId"] for v in ec2.describe_volumes(Filters=[tag])["Volumes"]]


def tagged_snapshots(ec2: Any, snapshot_id: str) -> list[dict[str, Any]]:
    tag = {"Name": "tag:yunguan:snapshot-id", "Values": [snapshot_id]}
    return ec2.describe_snapshots(OwnerIds=["self"], Filters=[tag])["Snapshots"]


def devices(ec2: Any, external_id: str) -> dict[str, str]:
    """The machine's block devices as EC2 keeps them: device name to volume."""
    mappings = describe(ec2, external_id)["BlockDeviceMappings"]
    return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in mappings}


@pytest.fixture
def machine(driver: Ec2Driver, spec: InstanceSpec) -> Machine:
    made = driver.create_instance(spec)
    return wait_state(driver, made.external_id, RUNNING)


class TestVolumes:
    def test_tags_zone_size_and_type(self, driver: Ec2Driver, ec2: Any) -> None:
        zone = driver.collect().hosts[-1].external_id
        wanted = volume_spec(host=zone)
        disk = driver.create_volume(wanted)
        raw = described_volume(ec2, disk.external_id)
        assert {t["Key"]: t["Value"] for t in raw["Tags"]} == {
            "Name": "data",
            "yunguan:volume-id": wanted.volume_id,
        }
        assert (raw["AvailabilityZone"], raw["Size"], raw["VolumeType"]) == (zone, 4, "gp3")
        assert raw["State"] == "available"
        assert disk == Disk(raw["VolumeId"], 4, volume_id=wanted.volume_id)

    def test_ex_options(self, driver: Ec2Driver, ec2: Any) -> None:
        disk = driver.create_volume(volume_spec(volume_type="io1", iops=500))
        raw = described_volume(ec2, disk.external_id)
        assert (raw["VolumeType"], raw["Iops"]) == ("io1", 500)

    def test_default_zone(self, moto_url: str, driver: Ec2Driver, ec2: Any) -> None:
        """Without a zone: the region's first, or the configured subnet's (where machines
        launch)."""
        disk = driver.create_volume(volume_spec())
        assert described_volume(ec2, disk.external_id)["AvailabilityZone"] == "us-east-1a"
        vpc_id = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock="10.8.1.0/24", AvailabilityZone="us-east-1c"
        )["Subnet"]
        placed = new_driver(moto_url, ex_subnet_id=subnet["SubnetId"])
        disk = placed.create_volume(volume_spec())
        assert described_volume(ec2, disk.external_id)["AvailabilityZone"] == "us-east-1c"

    def test_survives_a_crash(self, moto_url: str, ec2: Any) -> None:
        sent: list[dict[str, Any]] = []
        first = new_driver(moto_url)
        first._client.meta.events.register(
            "provide-client-params.ec2.CreateVolume", lambda params, **_: sent.append(params)
        )
        wanted = volume_spec()
        made = first.create_volume(wanted)
        again = new_driver(moto_url).create_volume(wanted)  # a new process retrying the step
        assert again == made
        assert tagged_volumes(ec2, wanted.volume_id) == [made.external_id]
        assert [params["ClientToken"] for params in sent] == [wanted.volume_id]

    def test_attach_and_detach(self, driver: Ec2Driver, ec2: Any, machine: Machine) -> None:
        logs_spec = volume_spec()
        data = driver.create_volume(volume_spec()).external_id
        logs = driver.create_volume(logs_spec).external_id
        assert driver.attach_volume(machine.external_id, data) == "/dev/sdf"
        assert driver.attach_volume(machine.external_id, data) == "/dev/sdf"  # attached already
        assert driver.attach_volume(machine.external_id, logs) == "/dev/sdg"
        [attachment] = described_volume(ec2, data)["Attachments"]
        assert (attachment["InstanceId"], attachment["Device"], attachment["State"]) == (
            machine.external_id,
            "/dev/sdf",
            "attached",
        )
        assert devices(ec2, machine.external_id).items() >= {"/dev/sdf": data}.items()
        assert driver.get_volume(logs) == Disk(
            logs, 4, logs_spec.volume_id, attached_to=machine.external_id, device="/dev/sdg"
        )

        driver.detach_volume(machine.external_id, data)
        raw = described_volume(ec2, data)
        assert (raw["State"], raw["Attachments"]) == ("available", [])
        assert "/dev/sdf" not in devices(ec2, machine.external_id)
        driver.detach_volume(machine.external_id, data)  # not attached: fine
        assert driver.attach_volume(machine.external_id, data) == "/dev/sdf"  # free again

    def test_device_names_taken_out_of_band(
        self, driver: Ec2Driver, ec2: Any, machine: Machine
    ) -> None:
        """``/dev/xvdg`` takes the slot of ``/dev/sdg``."""
        for device in ("/dev/sdf", "/dev/xvdg"):
            made = driver.create_volume(volume_spec()).external_id
            ec2.attach_volume(VolumeId=made, InstanceId=machine.external_id, Device=device)
        volume = driver.create_volume(volume_spec()).external_id
        assert driver.attach_volume(machine.external_id, volume) == "/dev/sdh"
        assert devices(ec2, machine.external_id)["/dev/sdh"] == volume

    def test_attached_elsewhere(
        self, driver: Ec2Driver, ec2: Any, spec: InstanceSpec, machine: Machine
    ) -> None:
        other = driver.create_instance(replace(spec, instance_id=f"inst-{secrets.token_hex(6)}"))
        volume = driver.create_volume(volume_spec()).external_id
        driver.attach_volume(machine.external_id, volume)
        with pytest.raises(ProviderError, match=f"attached to {machine.external_id}") as failed:
            driver.attach_volume(other.external_id, volume)
        assert not failed.value.transient
        assert volume not in devices(ec2, other.external_id).values()
        driver.detach_volume(other.external_id, volume)  # attached elsewhere: not to it, fine
        assert described_volume(ec2, volume)["Attachments"][0]["State"] == "attached"
        with pytest.raises(ProviderError, match="VolumeInUse") as refused:
            driver.delete_volume(volume)
        assert refused.value.transient  # detaching, or its machine terminating: try again

    def test_extend(self, driver: Ec2Driver, ec2: Any) -> None:
        volume = driver.create_volume(volume_spec()).external_id
        driver.extend_volume(volume, 6)
        assert described_volume(ec2, volume)["Size"] == 6
        driver.extend_volume(volume, 5)  # never shrinks: nothing asked of EC2
        driver.extend_volume(volume, 6)
        assert described_volume(ec2, volume)["Size"] == 6
        modifications = ec2.describe_volumes_modifications(VolumeIds=[volume])
        assert [m["TargetSize"] for m in modifications["VolumesModifications"]] == [6]

    def test_deleted_out_of_band(self, driver: Ec2Driver, ec2: Any, machine: Machine) -> None:
        volume = driver.create_volume(volume_spec()).external_id
        ec2.delete_volume(VolumeId=volume)
        with pytest.raises(MachineNotFound):
            driver.get_volume(volume)
        with pytest.raises(MachineNotFound):
            driver.attach_volume(machine.external_id, volume)
        with pytest.raises(MachineNotFound):
            driver.extend_volume(volume, 8)
        with pytest.raises(MachineNotFound):
            driver.create_snapshot(volume, f"snap-{secrets.token_hex(6)}")
        driver.detach_volume(machine.external_id, volume)
        driver.delete_volume(volume)
        with pytest.raises(MachineNotFound):
            driver.get_volume("vol-0123456789abcdef0")

    def test_attach_to_a_machine_gone(self, driver: Ec2Driver, machine: Machine) -> None:
        volume = driver.create_volume(volume_spec()).external_id
        driver.delete_instance(machine.external_id)
        with pytest.raises(MachineNotFound):
            driver.attach_volume(machine.external_id, volume)


class TestSnapshots:
    def test_snapshot_of_the_volume(self, moto_url: str, driver: Ec2Driver, ec2: Any) -> None:
        volume = driver.create_volume(volume_spec()).external_id
        snapshot_id = f"snap-{secrets.token_hex(6)}"
        made = driver.create_snapshot(volume, snapshot_id)
        again = new_driver(moto_url).create_snapshot(volume, snapshot_id)  # a retried step
        [raw] = tagged_snapshots(ec2, snapshot_id)
        assert made == again == raw["SnapshotId"]
        assert (raw["VolumeId"], raw["VolumeSize"]) == (volume, 4)
        assert {t["Key"]: t["Value"] for t in raw["Tags"]} == {"yunguan:snapshot-id": snapshot_id}

        driver.delete_snapshot(made)
        assert tagged_snapshots(ec2, snapshot_id) == []
        driver.delete_snapshot(made)  # gone already: fine

    def test_deleted_out_of_band(self, driver: Ec2Driver, ec2: Any) -> None:
        volume = driver.create_volume(volume_spec()).external_id
        snapshot_id = f"snap-{secrets.token_hex(6)}"
        made = driver.create_snapshot(volume, snapshot_id)
        ec2.delete_snapshot(SnapshotId=made)
        driver.delete_snapshot(made)
        remade = driver.create_snapshot(volume, snapshot_id)  # the tag went with it
        assert remade != made
        assert [s["SnapshotId"] for s in tagged_snapshots(ec2, snapshot_id)] == [remade]


VOLUME, INSTANCE = "vol-0123456789abcdef0", "i-0123456789abcdef0"


def volume_answer(state: str = "available", size: int = 4, attached: str = "") -> dict[str, Any]:
    """DescribeVolumes' answer for :data:`VOLUME`, attached to :data:`INSTANCE` when
    ``attached`` names the attachment's state."""
    attachments = [
        {"VolumeId": VOLUME, "InstanceId": INSTANCE, "Device": "/dev/sdf", "State": attached}
    ]
    volume = {"VolumeId": VOLUME, "Size": size, "State": state, "AvailabilityZone": "us-east-1a"}
    return {"Volumes": [volume | {"Attachments": attachments if attached else []}]}


def modifications(state: str = "", target: int = 0, **more: Any) -> dict[str, Any]:
    """DescribeVolumesModifications' answer: one modification in ``state`` (none if empty)."""
    found = {"VolumeId": VOLUME, "ModificationState": state, "TargetSize": target} | more
    return {"VolumesModifications": [found] if state else []}


class TestVolumeStates:
    """What moto never shows (it finishes every change at once), answered as EC2 would."""

    @pytest.fixture
    def stub(self, driver: Ec2Driver) -> Iterator[Stubber]:
        driver.wait_seconds, driver.poll_seconds = 10, 0.05
        with Stubber(driver._client) as stub:
            yield stub
            stub.assert_no_pending_responses()

    def test_deleting_is_gone(self, driver: Ec2Driver, stub: Stubber) -> None:
        stub.add_response("describe_volumes", volume_answer(state="deleting"))
        with pytest.raises(MachineNotFound):
            driver.get_volume(VOLUME)

    def test_detach_waits(self, driver: Ec2Driver, stub: Stubber) -> None:
        stub.add_response("describe_volumes", volume_answer("in-use", attached="attached"))
        stub.add_response("detach_volume", {"State": "detaching"})
        for _ in range(3):
            stub.add_response("describe_volumes", volume_answer("in-use", attached="detaching"))
        stub.add_response("describe_volumes", volume_answer("available"))
        driver.detach_volume(INSTANCE, VOLUME)

    def test_waits_are_bounded(self, driver: Ec2Driver, stub: Stubber) -> None:
        """Running out of time is transient: the retried step waits again."""
        stub.add_response("describe_volumes", volume_answer("in-use", attached="detaching"))
        stub.add_response("detach_volume", {"State": "detaching"})
        for _ in range(2):
            stub.add_response("describe_volumes", volume_answer("in-use", attached="detaching"))
        driver.wait_seconds = 0.05  # two looks: at once, then after one pause
        with pytest.raises(ProviderError, match=r"still waiting for .* detached") as failed:
            driver.detach_volume(INSTANCE, VOLUME)
        assert failed.value.transient

    def test_attach_waits_until_attached(self, driver: Ec2Driver, stub: Stubber) -> None:
        """A volume attaching already (an earlier attempt's) is only waited for."""
        stub.add_response("describe_volumes", volume_answer("in-use", attached="attaching"))
        stub.add_response("describe_volumes", volume_answer("in-use", attached="attaching"))
        stub.add_response("describe_volumes", volume_answer("in-use", attached="attached"))
        assert driver.attach_volume(INSTANCE, VOLUME) == "/dev/sdf"

    def test_a_device_name_taken_meanwhile_is_transient(
        self, driver: Ec2Driver, stub: Stubber
    ) -> None:
        instance = {"InstanceId": INSTANCE, "State": {"Name": "running"}}
        stub.add_response("describe_volumes", volume_answer())
        stub.add_response("describe_instances", {"Reservations": [{"Instances": [instance]}]})
        stub.add_client_error(
            "attach_volume", "InvalidParameterValue", "Attachment point /dev/sdf is in use"
        )
        with pytest.raises(ProviderError, match="InvalidParameterValue") as failed:
            driver.attach_volume(INSTANCE, VOLUME)
        assert failed.value.transient

    def test_extend_retried_only_waits(self, driver: Ec2Driver, stub: Stubber) -> None:
        """A modification under way to the size wanted is not asked for again."""
        stub.add_response("describe_volumes_modifications", modifications("modifying", 8))
        stub.add_response("describe_volumes_modifications", modifications("modifying", 8))
        stub.add_response("describe_volumes_modifications", modifications("optimizing", 8))
        stub.add_response("describe_volumes", volume_answer(size=8))
        driver.extend_volume(VOLUME, 8)

    def test_extend_failed(self, driver: Ec2Driver, stub: Stubber) -> None:
        stub.add_client_error(
            "describe_volumes_modifications", "InvalidVolumeModification.NotFound"
        )
        stub.add_response("describe_volumes", volume_answer(size=4))
        stub.add_response("modify_volume", {"VolumeModification": {"TargetSize": 8}})
        stub.add_response(
            "describe_volumes_modifications",
            modifications("failed", 8, StatusMessage="the volume type does not allow it"),
        )
        with pytest.raises(ProviderError, match="does not allow it") as failed:
            driver.extend_volume(VOLUME, 8)
        assert not failed.value.transient
