"""The ec2 driver: AWS EC2 (or a compatible cloud at ``endpoint_url``) through boto3.

A region's availability zones are its hosts; EC2 places machines itself. Our machines carry
the tags ``Name`` and ``yunguan:instance-id``; ``create_instance`` first looks the tag up and
then sends ``RunInstances`` with ``ClientToken`` = our instance id, so a step retried after a
crash (even one between EC2's answer and our commit) gets the same machine back.

Volumes are EBS volumes, made the same way (tag ``yunguan:volume-id``, ``ClientToken`` = our
volume id); snapshots are EBS snapshots tagged ``yunguan:snapshot-id`` (CreateSnapshot takes no
token, so the tag alone makes a retry find the first one). Calls that change a volume's state
wait for EC2 to finish, for at most ``wait_seconds``; a wait that runs out is a transient error,
and the retried step, being idempotent, waits again.
"""

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar

import boto3
from botocore import exceptions
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from pydantic import Field, SecretStr

from yunguan.core.db import chunked
from yunguan.core.types import Input
from yunguan.providers.base import (
    PENDING,
    RUNNING,
    STOPPED,
    UNKNOWN,
    Capability,
    Collected,
    Disk,
    HostFacts,
    InstanceSpec,
    Machine,
    MachineNotFound,
    ProviderError,
    VolumeSpec,
    capabilities,
)

TAG = "yunguan:instance-id"
STATES = {"pending": PENDING, "running": RUNNING, "stopping": STOPPED, "stopped": STOPPED}
GONE = ("shutting-down", "terminated")
LIVE_FILTER = {"Name": "instance-state-name", "Values": list(STATES)}

# A zone is one very large host: the largest figures Yunguan's host schema accepts (4096
# cores, 16 TiB of memory, 16 PiB of disk), so a zone never limits placement; the account's
# EC2 quotas do, and EC2 reports those when it refuses a launch.
ZONE_CORES, ZONE_MEMORY_MB, ZONE_DISK_GB = 4096, 16 * 1024 * 1024, 16 * 1024 * 1024

VOLUME_TAG = "yunguan:volume-id"
SNAPSHOT_TAG = "yunguan:snapshot-id"
VOLUME_GONE = ("deleting", "deleted")
LIVE_VOLUMES = {"Name": "status", "Values": ["creating", "available", "in-use", "error"]}
LIVE_SNAPSHOTS = {"Name": "status", "Values": ["pending", "completed"]}
# Device names EC2 recommends for data volumes on Linux; the kernel may show them as xvdf or
# nvme1n1, but EC2 (and Yunguan) knows the volume by this name.
DEVICES = tuple(f"/dev/sd{letter}" for letter in "fghijklmnop")
# ex options of a VolumeSpec and the CreateVolume parameters they set
VOLUME_OPTIONS = {
    "volume_type": "VolumeType",
    "iops": "Iops",
    "throughput": "Throughput",
    "encrypted": "Encrypted",
    "kms_key_id": "KmsKeyId",
}
WAIT_SECONDS, POLL_SECONDS = 120.0, 2.0

NOT_FOUND = {
    "InvalidInstanceID.NotFound",
    "InvalidInstanceID.Malformed",
    "InvalidVolume.NotFound",
    "InvalidVolumeID.Malformed",
    "InvalidSnapshot.NotFound",
    "InvalidSnapshotID.Malformed",
}
REJECTED_CREDENTIALS = {
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
}
TRANSIENT = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "InsufficientInstanceCapacity",
    "InsufficientAddressCapacity",
    "InternalError",
    "ServiceUnavailable",
    "Unavailable",
    # the machine is between states (starting, stopping); asking again later works
    "IncorrectInstanceState",
    # a security group still used by a machine that is terminating
    "DependencyViolation",
    # a volume between states (creating, detaching), or still attached to a machine that is
    # terminating; or one modification still under way when another is asked for
    "IncorrectState",
    "VolumeInUse",
    "IncorrectModificationState",
}
# what a call may raise: EC2's answer, boto's own failures, an answer that is not EC2's
CALL_ERRORS = (ClientError, BotoCoreError, ResponseParserError)
UNREACHABLE = (exceptions.ConnectionError, exceptions.HTTPClientError)
PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "all")

AwsId = Annotated[str, Field(pattern=r"^[a-z]+-[0-9a-f]{8,32}$")]
T = TypeVar("T")


class InstanceType(Input):
    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[a-z0-9-]+$", max_length=64)]
    vcpus: Annotated[int, Field(ge=1, le=4096)]
    memory_mb: Annotated[int, Field(ge=1, le=32 * 1024 * 1024)]


def _type(name: str, vcpus: int, memory_mb: int) -> InstanceType:
    return InstanceType(name=name, vcpus=vcpus, memory_mb=memory_mb)


# Burstable t3 for small machines, general-purpose m6i above; offered in every commercial region.
DEFAULT_INSTANCE_TYPES = (
    _type("t3.nano", 2, 512),
    _type("t3.micro", 2, 1024),
    _type("t3.small", 2, 2048),
    _type("t3.medium", 2, 4096),
    _type("t3.large", 2, 8192),
    _type("t3.xlarge", 4, 16384),
    _type("t3.2xlarge", 8, 32768),
    _type("m6i.4xlarge", 16, 65536),
    _type("m6i.8xlarge", 32, 131072),
    _type("m6i.16xlarge", 64, 262144),
    _type("m6i.32xlarge", 128, 524288),
)


class Config(Input):
    region: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]
    endpoint_url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=255)] | None = Field(
        None, description="a compatible cloud (or moto); unset for AWS itself"
    )
    ex_subnet_id: AwsId | None = None
    ex_security_group_ids: list[AwsId] = Field(default_factory=list, max_length=16)
    ex_key_name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    ex_instance_types: tuple[InstanceType, ...] = Field(
        DEFAULT_INSTANCE_TYPES,
        min_length=1,
        description="a create without ex.instance_type takes the smallest type that fits",
    )


class Secret(Input):
    access_key_id: Annotated[str, Field(min_length=1, max_length=128)]
    secret_access_key: SecretStr
    session_token: SecretStr | None = None


@dataclass(frozen=True)
class KeyPair:
    name: str
    key_pair_id: str
    fingerprint: str
    private_key: str | None = field(default=None, repr=False)
    """Only when EC2 made the key: shown this once, never again."""


@dataclass(frozen=True)
class Rule:
    """One ingress rule. Ports are inclusive (ICMP: type and code, -1 for any); rules of
    protocol ``all`` take no ports."""

    protocol: str
    from_port: int = -1
    to_port: int = -1
    cidr: str = "0.0.0.0/0"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if self.protocol == "all" and (self.from_port, self.to_port) != (-1, -1):
            raise ValueError("a rule for all protocols takes no ports")


@dataclass(frozen=True)
class SecurityGroup:
    group_id: str
    name: str
    vpc_id: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Address:
    allocation_id: str
    public_ip: str
    external_id: str | None = None
    association_id: str | None = None


def _code(exc: Exception) -> str:
    return exc.response["Error"].get("Code", "") if isinstance(exc, ClientError) else ""


def _tags(raw: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in raw.get("Tags", [])}


def _attachments(volume: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The volume's attachments (several for a multi-attach volume), detached ones left out."""
    return [a for a in volume.get("Attachments", []) if a.get("State") != "detached"]


def _attached_to(volume: Mapping[str, Any], external_id: str) -> dict[str, Any]:
    """The volume's attachment to that machine ({} when there is none)."""
    return next((a for a in _attachments(volume) if a.get("InstanceId") == external_id), {})


def _disk(volume: Mapping[str, Any]) -> Disk:
    attachment = next(iter(_attachments(volume)), {})
    return Disk(
        external_id=volume["VolumeId"],
        size_gb=volume["Size"],
        volume_id=_tags(volume).get(VOLUME_TAG),
        attached_to=attachment.get("InstanceId"),
        device=attachment.get("Device"),
    )


def _slot(device: str) -> str:
    """A device name without its prefix: ``/dev/sdf`` and ``/dev/xvdf`` are one slot to EC2."""
    return re.sub(r"^(/dev/)?(sd|xvd)", "", device)


def _free_device(instance: Mapping[str, Any]) -> str | None:
    """The first data device name none of the machine's block devices takes."""
    taken = {_slot(m["DeviceName"]) for m in instance.get("BlockDeviceMappings", [])}
    return next((d for d in DEVICES if _slot(d) not in taken), None)


def _permission(rule: Rule) -> dict[str, Any]:
    ranges = {"Ipv6Ranges": [{"CidrIpv6": rule.cidr}]} if ":" in rule.cidr else {}
    permission = {"IpProtocol": "-1" if rule.protocol == "all" else rule.protocol}
    if rule.protocol != "all":
        permission |= {"FromPort": rule.from_port, "ToPort": rule.to_port}
    return permission | (ranges or {"IpRanges": [{"CidrIp": rule.cidr}]})


def _rules(permissions: Iterable[Mapping[str, Any]]) -> set[Rule]:
    """Address-range rules only: rules naming other groups or prefix lists are left alone."""
    rules = set()
    for permission in permissions:
        protocol = permission["IpProtocol"]
        if protocol == "-1":
            ports: dict[str, int] = {}
        else:
            ports = {"from_port": permission["FromPort"], "to_port": permission["ToPort"]}
        cidrs = [r["CidrIp"] for r in permission.get("IpRanges", [])]
        cidrs += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
        rules |= {Rule("all" if protocol == "-1" else protocol, cidr=c, **ports) for c in cidrs}
    return rules


def _known_region(session: boto3.session.Session, region: str) -> bool:
    """Whether botocore knows ``region`` in any partition (AWS, China, GovCloud …)."""
    return any(
        region in session.get_available_regions("ec2", partition_name=partition)
        for partition in session.get_available_partitions()
    )


class Ec2Driver:
    kind: ClassVar[str] = "ec2"
    capabilities: ClassVar[dict[str, Capability]] = capabilities(
        supported=(
            "create",
            "start",
            "stop",
            "reboot",
            "delete",
            "console_log",
            "collect",
            "resize",
            "volumes",
            "snapshots",
        ),
        unsupported={
            "migrate": "a public cloud places machines itself; there is no host to choose",
            "live_migrate": "a public cloud places machines itself; there is no host to choose",
            "boot_device": "EC2 machines boot their image; the boot device cannot be chosen",
        },
    )

    def __init__(self, config: Config, secret: Secret) -> None:
        self.config = config
        session = boto3.session.Session(
            aws_access_key_id=secret.access_key_id,
            aws_secret_access_key=secret.secret_access_key.get_secret_value(),
            aws_session_token=secret.session_token and secret.session_token.get_secret_value(),
            region_name=config.region,
        )
        if config.endpoint_url is None and not _known_region(session, config.region):
            raise ProviderError(
                f"ec2: unknown region {config.region!r} (set endpoint_url for a compatible cloud)"
            )
        self._client = session.client(
            "ec2",
            endpoint_url=config.endpoint_url,
            config=BotoConfig(
                connect_timeout=5,
                read_timeout=30,
                retries={"mode": "standard", "total_max_attempts": 3},
            ),
        )
        self._sizes = {t.name: (t.vcpus, t.memory_mb) for t in config.ex_instance_types}
        self.wait_seconds, self.poll_seconds = WAIT_SECONDS, POLL_SECONDS

    # --- calls and their errors ------------------------------------------------------------

    def _call(
        self,
        operation: str,
        /,
        *,
        ignore: Iterable[str] = (),
        retry: Iterable[str] = (),
        **params: Any,
    ) -> Any:
        """Call the EC2 API; errors whose code is in ``ignore`` answer an empty dict, those in
        ``retry`` are transient for this call."""
        try:
            return getattr(self._client, operation)(**params)
        except CALL_ERRORS as exc:
            if _code(exc) in ignore:
                return {}
            error = self._error(operation, exc)
            error.transient = error.transient or _code(exc) in retry
            raise error from exc

    def _pages(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        try:
            pages = self._client.get_paginator(operation).paginate(**params)
            return [item for page in pages for item in page[key]]
        except CALL_ERRORS as exc:
            raise self._error(operation, exc) from exc

    def _error(self, operation: str, exc: Exception) -> ProviderError:
        where = f"ec2 {self.config.region}"
        if isinstance(exc, ClientError):
            code, message = _code(exc), exc.response["Error"].get("Message", "")
            if code in NOT_FOUND:
                return MachineNotFound(f"{where}: {message}")
            if code in REJECTED_CREDENTIALS:
                return ProviderError(f"{where}: the credentials were rejected ({code}): {message}")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return ProviderError(
                f"{where}: {exc.operation_name} failed: {code}: {message}",
                transient=code in TRANSIENT or status >= 500,
            )
        endpoint = self._client.meta.endpoint_url
        if isinstance(exc, UNREACHABLE):
            return ProviderError(f"{where}: cannot reach {endpoint}: {exc}", transient=True)
        if isinstance(exc, ResponseParserError):
            return ProviderError(
                f"{where}: {endpoint} did not answer {operation} as EC2 does"
                " (check endpoint_url and the region)"
            )
        return ProviderError(f"{where}: {operation} failed: {exc}")

    def _wait(self, what: str, check: Callable[[], T | None]) -> T:
        """Poll ``check`` until it answers something (not None), for at most ``wait_seconds``."""
        deadline = time.monotonic() + self.wait_seconds
        while (answer := check()) is None:
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"ec2 {self.config.region}: still waiting for {what}"
                    f" after {self.wait_seconds:g}s",
                    transient=True,
                )
            time.sleep(self.poll_seconds)
        return answer

    # --- machines --------------------------------------------------------------------------

    def _instances(self, **params: Any) -> list[dict[str, Any]]:
        reservations = self._pages("describe_instances", "Reservations", **params)
        return [instance for r in reservations for instance in r["Instances"]]

    def _known_sizes(self, types: Iterable[str]) -> dict[str, tuple[int, int]]:
        """vCPUs and MiB by instance type: the configured table, then EC2 (remembered)."""
        missing = sorted(set(types) - self._sizes.keys())
        for chunk in chunked(missing, 100):
            for item in self._pages(
                "describe_instance_types", "InstanceTypes", InstanceTypes=chunk
            ):
                sizes = (item["VCpuInfo"]["DefaultVCpus"], item["MemoryInfo"]["SizeInMiB"])
                self._sizes[item["InstanceType"]] = sizes
        return self._sizes

    def _machines(self, instances: list[dict[str, Any]]) -> list[Machine]:
        sizes = self._known_sizes(raw["InstanceType"] for raw in instances)
        return [self._machine(raw, sizes) for raw in instances]

    def _machine(self, raw: Mapping[str, Any], sizes: Mapping[str, tuple[int, int]]) -> Machine:
        tags = _tags(raw)
        vcpus, memory_mb = sizes.get(raw["InstanceType"], (0, 0))
        addresses = (raw.get("PrivateIpAddress"), raw.get("PublicIpAddress"))
        return Machine(
            external_id=raw["InstanceId"],
            name=tags.get("Name") or raw["InstanceId"],
            state=STATES.get(raw["State"]["Name"], UNKNOWN),
            instance_id=tags.get(TAG),
            host=raw.get("Placement", {}).get("AvailabilityZone"),
            vcpus=vcpus,
            memory_mb=memory_mb,
            addresses=tuple(a for a in addresses if a),
        )

    def _instance_type(self, vcpus: int, memory_mb: int, ex: Mapping[str, Any]) -> str:
        """``ex['instance_type']``, else the smallest type of the table that fits."""
        if chosen := ex.get("instance_type"):
            return chosen
        types = self.config.ex_instance_types
        fitting = [t for t in types if t.vcpus >= vcpus and t.memory_mb >= memory_mb]
        if not fitting:
            raise ProviderError(
                f"ec2: no instance type in the table fits {vcpus} vCPUs and {memory_mb} MB;"
                " name one in ex.instance_type"
            )
        return min(fitting, key=lambda t: (t.vcpus, t.memory_mb)).name

    def _root_volume(self, image_id: str, disk_gb: int) -> list[dict[str, Any]]:
        """The root disk at ``disk_gb`` (never below the image's snapshot), deleted with the
        machine; nothing for instance-store images, whose root size is fixed."""
        images = self._call("describe_images", ImageIds=[image_id])["Images"]
        if not images:
            raise ProviderError(f"ec2 {self.config.region}: no image {image_id}")
        image = images[0]
        root = image.get("RootDeviceName")
        if image.get("RootDeviceType") != "ebs" or not root:
            return []
        snapshot_gb = max(
            (
                m["Ebs"].get("VolumeSize", 0)
                for m in image.get("BlockDeviceMappings", [])
                if m.get("DeviceName") == root and "Ebs" in m
            ),
            default=0,
        )
        size = max(disk_gb, snapshot_gb)
        return [{"DeviceName": root, "Ebs": {"VolumeSize": size, "DeleteOnTermination": True}}]

    def _option(self, spec: InstanceSpec, name: str) -> Any:
        """A launch option from the spec's ``ex``, else the provider's ``ex_`` default."""
        return spec.ex.get(name) or getattr(self.config, f"ex_{name}")

    def _launch(self, spec: InstanceSpec) -> dict[str, Any]:
        if not spec.image.location:
            raise ProviderError(f"ec2: image {spec.image.name!r} has no AMI id (location)")
        tags = [{"Key": "Name", "Value": spec.name}, {"Key": TAG, "Value": spec.instance_id}]
        params = {
            "ImageId": spec.image.location,
            "InstanceType": self._instance_type(spec.vcpus, spec.memory_mb, spec.ex),
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": spec.instance_id,
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")
            ],
            "BlockDeviceMappings": self._root_volume(spec.image.location, spec.disk_gb),
        }
        if spec.host:
            params["Placement"] = {"AvailabilityZone": spec.host}
        options = {
            "SubnetId": self._option(spec, "subnet_id"),
            "SecurityGroupIds": self._option(spec, "security_group_ids"),
            "KeyName": self._option(spec, "key_name"),
        }
        return params | {key: value for key, value in options.items() if value}

    def create_instance(self, spec: InstanceSpec) -> Machine:
        found = self.find_instance(spec.instance_id)
        if found is not None:
            return found
        raw = self._call("run_instances", **self._launch(spec))["Instances"][0]
        if raw["State"]["Name"] in GONE:
            raise ProviderError(
                f"ec2 {self.config.region}: instance id {spec.instance_id} already made"
                f" {raw['InstanceId']}, now terminated; EC2 will not launch it again"
            )
        return self._machines([raw])[0]

    def find_instance(self, instance_id: str) -> Machine | None:
        tagged = {"Name": f"tag:{TAG}", "Values": [instance_id]}
        instances = self._instances(Filters=[tagged, LIVE_FILTER])
        return self._machines(instances[:1])[0] if instances else None

    def _live(self, external_id: str) -> dict[str, Any]:
        """The instance as EC2 describes it; MachineNotFound once it is terminating."""
        instances = self._instances(InstanceIds=[external_id])
        if not instances or instances[0]["State"]["Name"] in GONE:
            raise MachineNotFound(f"ec2 {self.config.region}: no instance {external_id}")
        return instances[0]

    def get_instance(self, external_id: str) -> Machine:
        return self._machines([self._live(external_id)])[0]

    def start_instance(self, external_id: str) -> None:
        self._call("start_instances", InstanceIds=[external_id])

    def stop_instance(self, external_id: str) -> None:
        self._call("stop_instances", InstanceIds=[external_id])

    def resize_instance(
        self,
        external_id: str,
        vcpus: int,
        memory_mb: int,
        disk_gb: int = 0,
        ex: Mapping[str, Any] | None = None,
    ) -> Machine:
        """Change the instance type (``ex['instance_type']`` or the smallest that fits); EC2
        does this only while the machine is stopped. The root volume keeps its size
        (``disk_gb`` is not applied: grow data volumes instead)."""
        raw = self._live(external_id)
        state = raw["State"]["Name"]
        if state != "stopped":
            raise ProviderError(
                f"ec2 {self.config.region}: {external_id} is {state}; stop it to resize",
                transient=state == "stopping",
            )
        wanted = self._instance_type(vcpus, memory_mb, ex or {})
        if raw["InstanceType"] != wanted:
            self._call(
                "modify_instance_attribute",
                InstanceId=external_id,
                InstanceType={"Value": wanted},
            )
        return self.get_instance(external_id)

    def reboot_instance(self, external_id: str) -> None:
        """EC2 has no rebooting state: the machine stays ``running`` throughout."""
        self._call("reboot_instances", InstanceIds=[external_id])

    def delete_instance(self, external_id: str) -> None:
        """Terminate; the root disk goes with it (``DeleteOnTermination``)."""
        with contextlib.suppress(MachineNotFound):
            self._call("terminate_instances", InstanceIds=[external_id])

    def console_log(self, external_id: str) -> str:
        """EC2 sends the log base64-encoded; botocore decodes it (undecodable bytes replaced)."""
        return self._call("get_console_output", InstanceId=external_id).get("Output", "")

    # --- volumes ---------------------------------------------------------------------------

    def _volume(self, external_id: str) -> dict[str, Any]:
        """The volume as EC2 describes it; MachineNotFound once it is being deleted."""
        volumes = self._pages("describe_volumes", "Volumes", VolumeIds=[external_id])
        if not volumes or volumes[0]["State"] in VOLUME_GONE:
            raise MachineNotFound(f"ec2 {self.config.region}: no volume {external_id}")
        return volumes[0]

    def _await_volume(
        self, external_id: str, what: str, ready: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The volume, once ``ready`` holds for it (waiting at most ``wait_seconds``)."""

        def check() -> dict[str, Any] | None:
            volume = self._volume(external_id)
            return volume if ready(volume) else None

        return self._wait(f"{external_id} {what}", check)

    def _find_volume(self, volume_id: str) -> dict[str, Any] | None:
        tagged = {"Name": f"tag:{VOLUME_TAG}", "Values": [volume_id]}
        volumes = self._pages("describe_volumes", "Volumes", Filters=[tagged, LIVE_VOLUMES])
        return volumes[0] if volumes else None

    def _default_zone(self) -> str:
        """Where a volume goes when its spec names no zone: the configured subnet's zone
        (where machines launch), else the region's first availability zone. A machine EC2
        placed elsewhere cannot attach it: name the machine's zone (its ``host``) instead."""
        if self.config.ex_subnet_id:
            subnets = self._call("describe_subnets", SubnetIds=[self.config.ex_subnet_id])
            return subnets["Subnets"][0]["AvailabilityZone"]
        zones = [z["ZoneName"] for z in self._availability_zones() if z.get("State") == "available"]
        if not zones:
            raise ProviderError(f"ec2 {self.config.region}: no availability zone is available")
        return min(zones)

    def _new_volume(self, spec: VolumeSpec) -> dict[str, Any]:
        """CreateVolume: a gp3 volume unless ``ex`` says otherwise (any of
        :data:`VOLUME_OPTIONS`)."""
        tags = [{"Key": "Name", "Value": spec.name}, {"Key": VOLUME_TAG, "Value": spec.volume_id}]
        options = {
            param: spec.ex[name] for name, param in VOLUME_OPTIONS.items() if name in spec.ex
        }
        return self._call(
            "create_volume",
            AvailabilityZone=spec.host or self._default_zone(),
            Size=spec.size_gb,
            ClientToken=spec.volume_id,
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
            **({"VolumeType": "gp3"} | options),
        )

    def _made(self, volume: Mapping[str, Any]) -> dict[str, Any] | None:
        """The new volume once it is no longer ``creating``, else None. For a moment EC2 may
        not even list it: its API is eventually consistent."""
        with contextlib.suppress(MachineNotFound):
            described = self._volume(volume["VolumeId"])
            if described["State"] != "creating":
                return described
        return None

    def create_volume(self, spec: VolumeSpec) -> Disk:
        """Find the volume tagged with our id, else create it; then wait until it is made."""
        volume = self._find_volume(spec.volume_id) or self._new_volume(spec)
        if volume["State"] in VOLUME_GONE:
            raise ProviderError(
                f"ec2 {self.config.region}: volume id {spec.volume_id} already made"
                f" {volume['VolumeId']}, now deleted; EC2 will not create it again"
            )
        made = self._wait(f"{volume['VolumeId']} to be created", lambda: self._made(volume))
        if made["State"] == "error":
            raise ProviderError(
                f"ec2 {self.config.region}: EC2 failed to create {made['VolumeId']}"
            )
        return _disk(made)

    def get_volume(self, external_id: str) -> Disk:
        return _disk(self._volume(external_id))

    def attach_volume(self, machine_id: str, volume_id: str) -> str:
        """Attach at the machine's first free device name and wait until EC2 reports it
        attached. A volume attached (or attaching) to the machine already is only waited for.
        Two volumes attached at once may race for a name: the loser's error is transient, and
        the retry picks the next name."""
        volume = self._volume(volume_id)
        if not _attached_to(volume, machine_id):
            if others := [a["InstanceId"] for a in _attachments(volume)]:
                raise ProviderError(
                    f"ec2 {self.config.region}: {volume_id} is attached to {', '.join(others)}"
                )
            device = _free_device(self._live(machine_id))
            if device is None:
                raise ProviderError(
                    f"ec2 {self.config.region}: {machine_id} has no free device name"
                    f" ({DEVICES[0]} to {DEVICES[-1]} are taken)"
                )
            self._call(
                "attach_volume",
                VolumeId=volume_id,
                InstanceId=machine_id,
                Device=device,
                retry={"InvalidParameterValue"},  # the name was taken meanwhile
            )
        attached = self._await_volume(
            volume_id,
            f"to be attached to {machine_id}",
            lambda v: _attached_to(v, machine_id).get("State") == "attached",
        )
        return _attached_to(attached, machine_id)["Device"]

    def detach_volume(self, machine_id: str, volume_id: str) -> None:
        """Detach and wait until EC2 reports the volume off the machine. A volume not attached
        to it (or gone) is fine."""
        try:
            volume = self._volume(volume_id)
        except MachineNotFound:
            return
        if not _attached_to(volume, machine_id):
            return
        self._call(
            "detach_volume",
            VolumeId=volume_id,
            InstanceId=machine_id,
            ignore={"IncorrectState", "InvalidAttachment.NotFound"},  # detached meanwhile
        )
        self._await_volume(
            volume_id,
            f"to be detached from {machine_id}",
            lambda v: not _attached_to(v, machine_id),
        )

    def _modification(self, volume_id: str) -> dict[str, Any]:
        """The volume's latest modification ({} when it was never modified)."""
        found = self._call(
            "describe_volumes_modifications",
            VolumeIds=[volume_id],
            ignore={"InvalidVolumeModification.NotFound"},
        )
        modifications = found.get("VolumesModifications", [])
        return max(modifications, key=lambda m: m.get("StartTime", 0), default={})

    def _grown(self, volume_id: str, size_gb: int) -> bool | None:
        """True once EC2 reports the size and the modification is past ``modifying`` (the
        guest may use the space from ``optimizing`` on); None until then."""
        modification = self._modification(volume_id)
        state = modification.get("ModificationState", "completed")
        if state == "failed":
            raise ProviderError(
                f"ec2 {self.config.region}: growing {volume_id} to"
                f" {modification.get('TargetSize')} GB failed:"
                f" {modification.get('StatusMessage', 'no reason given')}"
            )
        return (state != "modifying" and self._volume(volume_id)["Size"] >= size_gb) or None

    def extend_volume(self, volume_id: str, size_gb: int) -> None:
        """Grow with ModifyVolume and wait until EC2 reports the new size. A size not above
        the current one changes nothing (EBS never shrinks); a step retried while its
        modification is under way only waits for it."""
        modification = self._modification(volume_id)
        growing = (
            modification.get("ModificationState") in ("modifying", "optimizing")
            and modification.get("TargetSize", 0) >= size_gb
        )
        if not growing:
            if self._volume(volume_id)["Size"] >= size_gb:
                return
            self._call("modify_volume", VolumeId=volume_id, Size=size_gb)
        self._wait(f"{volume_id} to grow to {size_gb} GB", lambda: self._grown(volume_id, size_gb))

    def delete_volume(self, volume_id: str) -> None:
        """Delete; gone already is fine. A volume still attached is a (transient) error."""
        self._call("delete_volume", VolumeId=volume_id, ignore={"InvalidVolume.NotFound"})

    # --- snapshots -------------------------------------------------------------------------

    def _find_snapshot(self, snapshot_id: str) -> str | None:
        tagged = {"Name": f"tag:{SNAPSHOT_TAG}", "Values": [snapshot_id]}
        snapshots = self._pages(
            "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=[tagged, LIVE_SNAPSHOTS]
        )
        return snapshots[0]["SnapshotId"] if snapshots else None

    def create_snapshot(self, volume_id: str, snapshot_id: str) -> str:
        """Find the snapshot tagged with our id, else take one. It is not waited for: EBS
        copies the volume as it was when asked, however long the copy then takes."""
        if found := self._find_snapshot(snapshot_id):
            return found
        tags = [{"Key": SNAPSHOT_TAG, "Value": snapshot_id}]
        made = self._call(
            "create_snapshot",
            VolumeId=volume_id,
            Description=f"yunguan snapshot {snapshot_id}",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
        )
        return made["SnapshotId"]

    def delete_snapshot(self, external_id: str) -> None:
        self._call("delete_snapshot", SnapshotId=external_id, ignore={"InvalidSnapshot.NotFound"})

    # --- inventory -------------------------------------------------------------------------

    def _zone(self, zone: Mapping[str, Any]) -> HostFacts:
        return HostFacts(
            external_id=zone["ZoneName"],
            name=zone["ZoneName"],
            hypervisor="public-cloud",
            cpu_cores=ZONE_CORES,
            memory_mb=ZONE_MEMORY_MB,
            disk_gb=ZONE_DISK_GB,
            power_state="on" if zone.get("State", "available") == "available" else "off",
            traits=(f"zone-id:{zone['ZoneId']}",) if zone.get("ZoneId") else (),
        )

    def _availability_zones(self) -> list[dict[str, Any]]:
        """The region's availability zones (not its local or wavelength zones)."""
        zones = self._call("describe_availability_zones")["AvailabilityZones"]
        return [z for z in zones if z.get("ZoneType", "availability-zone") == "availability-zone"]

    def collect(self) -> Collected:
        """Availability zones and every live machine."""
        hosts = [self._zone(zone) for zone in self._availability_zones()]
        return Collected(
            hosts=hosts, machines=self._machines(self._instances(Filters=[LIVE_FILTER]))
        )

    def close(self) -> None:
        self._client.close()

    # --- key pairs -------------------------------------------------------------------------

    def ex_create_key_pair(self, name: str, public_key: str | None = None) -> KeyPair:
        """Import ``public_key``, or have EC2 make a key and return its private half once."""
        if public_key is None:
            made = self._call("create_key_pair", KeyName=name)
        else:
            made = self._call(
                "import_key_pair", KeyName=name, PublicKeyMaterial=public_key.encode()
            )
        return KeyPair(
            name=made["KeyName"],
            key_pair_id=made.get("KeyPairId", ""),
            fingerprint=made["KeyFingerprint"],
            private_key=made.get("KeyMaterial"),
        )

    def ex_delete_key_pair(self, name: str) -> None:
        self._call("delete_key_pair", KeyName=name, ignore={"InvalidKeyPair.NotFound"})

    # --- security groups -------------------------------------------------------------------

    def _vpc_id(self) -> str:
        """The configured subnet's VPC, else the region's default VPC."""
        if self.config.ex_subnet_id:
            subnets = self._call("describe_subnets", SubnetIds=[self.config.ex_subnet_id])
            return subnets["Subnets"][0]["VpcId"]
        default = {"Name": "isDefault", "Values": ["true"]}
        vpcs = self._call("describe_vpcs", Filters=[default])["Vpcs"]
        if not vpcs:
            raise ProviderError(f"ec2 {self.config.region}: no default VPC; set ex_subnet_id")
        return vpcs[0]["VpcId"]

    def _group(self, name: str, vpc_id: str) -> dict[str, Any] | None:
        named = [{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc_id]}]
        groups = self._call("describe_security_groups", Filters=named)["SecurityGroups"]
        return groups[0] if groups else None

    def _create_group(self, name: str, description: str, vpc_id: str) -> dict[str, Any] | None:
        made = self._call(
            "create_security_group",
            GroupName=name,
            Description=description,
            VpcId=vpc_id,
            ignore={"InvalidGroup.Duplicate"},
        )
        if made:
            return {"GroupId": made["GroupId"], "IpPermissions": []}
        return self._group(name, vpc_id)  # a concurrent ensure made it

    def ex_ensure_security_group(
        self, name: str, description: str, rules: Iterable[Rule]
    ) -> SecurityGroup:
        """The group ``name`` exists with exactly these address-range ingress rules: missing
        ones are added, others revoked. Egress stays EC2's default (all allowed)."""
        vpc_id = self._vpc_id()
        group = self._group(name, vpc_id) or self._create_group(name, description, vpc_id)
        wanted = tuple(dict.fromkeys(rules))
        have = _rules(group["IpPermissions"])
        if missing := [r for r in wanted if r not in have]:
            self._call(
                "authorize_security_group_ingress",
                GroupId=group["GroupId"],
                IpPermissions=[_permission(r) for r in missing],
                ignore={"InvalidPermission.Duplicate"},
            )
        if extra := have - set(wanted):
            self._call(
                "revoke_security_group_ingress",
                GroupId=group["GroupId"],
                IpPermissions=[_permission(r) for r in extra],
                ignore={"InvalidPermission.NotFound"},
            )
        return SecurityGroup(group["GroupId"], name, vpc_id, wanted)

    def ex_delete_security_group(self, group_id: str) -> None:
        self._call("delete_security_group", GroupId=group_id, ignore={"InvalidGroup.NotFound"})

    # --- elastic IPs -----------------------------------------------------------------------

    def _address(self, allocation_id: str) -> Address:
        found = self._call("describe_addresses", AllocationIds=[allocation_id])["Addresses"]
        if not found:
            raise ProviderError(f"ec2 {self.config.region}: no address {allocation_id}")
        raw = found[0]
        return Address(
            allocation_id=raw["AllocationId"],
            public_ip=raw["PublicIp"],
            external_id=raw.get("InstanceId") or None,
            association_id=raw.get("AssociationId") or None,
        )

    def ex_allocate_address(self) -> Address:
        made = self._call("allocate_address", Domain="vpc")
        return Address(allocation_id=made["AllocationId"], public_ip=made["PublicIp"])

    def ex_associate_address(self, allocation_id: str, external_id: str) -> Address:
        self._call("associate_address", AllocationId=allocation_id, InstanceId=external_id)
        return self._address(allocation_id)

    def ex_disassociate_address(self, allocation_id: str) -> Address:
        address = self._address(allocation_id)
        if address.association_id:
            self._call(
                "disassociate_address",
                AssociationId=address.association_id,
                ignore={"InvalidAssociationID.NotFound"},
            )
        return self._address(allocation_id)

    def ex_release_address(self, allocation_id: str) -> None:
        """Release; gone already is fine. An associated address must be disassociated first."""
        self._call(
            "release_address", AllocationId=allocation_id, ignore={"InvalidAllocationID.NotFound"}
        )
