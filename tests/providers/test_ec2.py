"""The ec2 driver against moto's EC2 emulator (a server on 127.0.0.1, one per test worker).

moto does not honour ``ClientToken`` (a repeated RunInstances makes a second machine), so the
crash test proves the tag lookup and only checks that the token reaches EC2.
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
    ImageRef,
    InstanceSpec,
    MachineNotFound,
    ProviderError,
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
