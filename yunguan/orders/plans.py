"""What a rendered spec asks for, as a ``Plan``, checked before anything is made.

Every kind but an external offering asks for instances (a bundle: a list of instance
entries). A bundle may also ask for a network of its own (a VPC with one vxnet that all its
instances join), volumes (one per instance of an entry, attached to it) and an EIP (bound
to the first instance of an entry)::

    network: {zone_id: zone-…, cidr: 10.20.0.0/16, vxnet_cidr: 10.20.1.0/24}
    instances:
      - {name: web, flavor_id: flv-…, image_id: img-…, count: 2}
      - {name: db, flavor_id: flv-…, image_id: img-…}
    volumes: [{instance: db, size_gb: 100, name: data}]
    eip: {instance: web, bandwidth_mbps: 20}
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from yunguan.compute import service as compute
from yunguan.compute.schemas import InstanceCreate, SizeGb
from yunguan.core.errors import NotFound, Problem, Unprocessable, field_errors, summary
from yunguan.core.types import Identifier, Input, Name
from yunguan.identity.scope import Principal
from yunguan.network import vpcs
from yunguan.network.schemas import Cidr
from yunguan.orders import vendors
from yunguan.quota import service as quota

EXTERNAL = "external"
INSTANCE_FIELDS = ("flavor_id", "image_id", "zone_id", "vxnet_id", "count")


class Network(Input):
    zone_id: Identifier
    cidr: Cidr
    vxnet_cidr: Cidr | None = Field(None, description="default: the whole VPC")


class Volume(Input):
    instance: Name = Field(description="the instance entry: each of its instances gets one")
    size_gb: SizeGb
    name: Name = "data"


class Eip(Input):
    instance: Name | None = Field(None, description="the entry whose first instance gets it")
    bandwidth_mbps: Annotated[int, Field(ge=1, le=100_000)] = 10


class Extras(BaseModel):
    """A bundle's keys besides its instances (other keys are the template's own)."""

    network: Network | None = None
    volumes: Annotated[list[Volume], Field(max_length=16)] = []
    eip: Eip | None = None


@dataclass(frozen=True)
class Plan:
    instances: tuple[tuple[str, InstanceCreate], ...] = ()
    """(entry name, request): an entry's instances share its name."""
    network: Network | None = None
    volumes: tuple[Volume, ...] = ()
    eip: Eip | None = None

    def eip_entry(self) -> str:
        return (self.eip and self.eip.instance) or self.instances[0][0]


def _error(loc: Iterable[Any], msg: str, kind: str = "invalid") -> dict[str, Any]:
    return {"loc": [str(p) for p in loc], "msg": msg, "type": kind}


def _refuse(errors: list[dict[str, Any]]) -> None:
    if errors:
        raise Unprocessable(summary(errors), code="invalid-spec", errors=errors)


def _parsed(model: Any, value: Any, loc: list[Any], errors: list[dict[str, Any]]) -> Any:
    """``value`` as ``model``, or None with its faults (under ``loc``) added to ``errors``."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors += [e | {"loc": [*map(str, loc), *e["loc"]]} for e in field_errors(exc.errors())]
        return None


def plan(kind: str, spec: dict[str, Any], name: str) -> Plan:
    """The plan of a rendered spec of ``kind``: a 422 listing every fault when the spec,
    once its parameters are filled in, does not describe what can be made. An external
    offering's vendor provisions it: its plan is empty."""
    if kind == EXTERNAL:
        vendors.check_url(spec)
        return Plan()
    bundle = kind == "bundle"
    entries = spec.get("instances") if bundle else [spec]
    errors: list[dict[str, Any]] = []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        _refuse([_error(["spec", "instances"], "must be a list of instance entries")])
    instances = []
    for n, entry in enumerate(entries):  # type: ignore[union-attr]
        fields = {"name": entry.get("name", name)} | {
            k: entry[k] for k in INSTANCE_FIELDS if entry.get(k) is not None
        }
        loc = ["spec", "instances", n] if bundle else ["spec"]
        request = _parsed(InstanceCreate, fields, loc, errors)
        if request is not None:
            instances.append((request.name, request))
    extras = _parsed(Extras, spec, ["spec"], errors) if bundle else Extras()
    _refuse(errors)
    made = Plan(tuple(instances), extras.network, tuple(extras.volumes), extras.eip)  # type: ignore[union-attr]
    _refuse(_cross_check(made))
    return made


def _cross_check(made: Plan) -> list[dict[str, Any]]:
    """Entry names are unique and referred to correctly; a bundle's network places all its
    instances; the EIP's instance has a vxnet (its port is what the EIP binds to)."""
    names = [entry for entry, _ in made.instances]
    errors = [
        _error(["spec", "instances", n, "name"], f"two entries are named {entry!r}", "duplicate")
        for n, entry in enumerate(names)
        if entry in names[:n]
    ]
    if not names:
        errors.append(_error(["spec", "instances"], "a bundle needs at least one instance"))
    for n, volume in enumerate(made.volumes):
        if volume.instance not in names:
            where = ["spec", "volumes", n, "instance"]
            errors.append(_error(where, f"no instance entry is named {volume.instance!r}"))
    if made.eip and made.eip.instance is not None and made.eip.instance not in names:
        errors.append(
            _error(["spec", "eip", "instance"], f"no instance entry is named {made.eip.instance!r}")
        )
    bound = dict(made.instances).get(made.eip_entry()) if made.eip and names else None
    if bound is not None and made.network is None and bound.vxnet_id is None:
        why = "binds to a port: give the bundle a network or the entry a vxnet_id"
        errors.append(_error(["spec", "eip"], why))
    if made.network is not None:
        for n, (_, request) in enumerate(made.instances):
            if request.vxnet_id is not None:
                where = ["spec", "instances", n, "vxnet_id"]
                errors.append(_error(where, "the bundle's network places its instances"))
            if request.zone_id not in (None, made.network.zone_id):
                where = ["spec", "instances", n, "zone_id"]
                errors.append(_error(where, "differs from the bundle network's zone"))
    return errors


def check(session: Session, principal: Principal, tenant_id: str, made: Plan) -> None:
    """What the requester may ask for (its flavors, images and zones: fulfilment acts as
    the platform), the network's addresses, and a quota dry run: a 409 now if the tenant's
    quota already refuses it."""
    wanted: dict[str, int] = {}

    def add(amounts: dict[str, int], times: int = 1) -> None:
        for resource, amount in amounts.items():
            wanted[resource] = wanted.get(resource, 0) + amount * times

    zones = [request.zone_id for _, request in made.instances]
    if made.network is not None:
        zones.append(made.network.zone_id)
        _check_network(made.network)
        add({"vpcs": 1, "vxnets": 1})
    for zone_id in filter(None, zones):
        if not compute.zone_usable(session, principal, zone_id):
            raise NotFound(f"zone {zone_id} not found")
    counts: dict[str, int] = {}
    for entry, request in made.instances:
        flavor = compute.get_flavor(session, principal, request.flavor_id)
        compute.get_image(session, principal, request.image_id)
        add(compute.demand(flavor), request.count)
        counts[entry] = request.count
    for volume in made.volumes:
        add({"volumes": 1, "volume_gb": volume.size_gb}, counts[volume.instance])
    if made.eip is not None:
        add({"public_ips": 1})
    quota.preflight(session, tenant_id, wanted)


def _check_network(network: Network) -> None:
    checks: list[tuple[str, Callable[[], Any]]] = [("cidr", lambda: vpcs.vpc_network(network.cidr))]
    if network.vxnet_cidr is not None:
        vxnet = network.vxnet_cidr
        checks.append(("vxnet_cidr", lambda: vpcs.vxnet_network(network.cidr, vxnet)))
    for field, checked in checks:  # the vxnet's only once the VPC's is right
        try:
            checked()
        except Problem as exc:
            _refuse([_error(["spec", "network", field], exc.detail)])
