"""Providers: registration (platform admins), their credentials (encrypted at rest), and
applying what a provider reports (hosts into the inventory, machines reconciled with our
instances). The only code that writes the providers table."""

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunguan.compute import service as compute
from yunguan.compute.models import Instance
from yunguan.core import audit, secrets
from yunguan.core.clock import now
from yunguan.core.db import flush_or_conflict
from yunguan.core.errors import BadRequest, Conflict, NotFound
from yunguan.core.ids import new_id
from yunguan.core.pagination import PageParams
from yunguan.identity.scope import Principal, get_permitted, list_permitted, require
from yunguan.inventory import service as inventory
from yunguan.providers import registry
from yunguan.providers.base import Collected
from yunguan.providers.models import Provider
from yunguan.providers.schemas import ImportRequest, ProviderCreate, ProviderUpdate
from yunguan.workflows.models import Operation
from yunguan.workflows.service import create_operation

READ, WRITE = inventory.READ, inventory.WRITE
SYNC = "provider.sync"
IMPORTABLE_SHOWN = 1000


def list_providers(session: Session, principal: Principal, page: PageParams, **filters: Any):
    return list_permitted(session, principal, Provider, READ, page, **filters)


def get_provider(session: Session, principal: Principal, provider_id: str) -> Provider:
    return get_permitted(session, Provider, provider_id, principal, READ, "provider")


def _configure(
    provider: Provider, hypervisor: str, config: dict[str, Any], secret: dict[str, Any] | None
) -> None:
    """Validate and store the driver's settings; the simulator takes the cluster's
    hypervisor and, unless given, a realm named after the provider."""
    if provider.kind == "simulator":  # its realm names its machines: it never changes
        realm = (provider.config or {}).get("realm") or config.get("realm") or provider.id
        config = {"hypervisor": hypervisor, **config, "realm": realm}
    elif registry.HYPERVISORS[provider.kind] != hypervisor:
        raise BadRequest(
            f"a {provider.kind} provider reports {registry.HYPERVISORS[provider.kind]} hosts; "
            f"its cluster's hypervisor is {hypervisor}",
            code="bad-cluster",
        )
    given_secret = secret if secret is not None else secrets.unseal(provider.secret)
    provider.config, checked_secret = registry.validated(provider.kind, config, given_secret)
    if secret is not None:
        provider.secret = secrets.seal(checked_secret) if any(secret.values()) else ""


def create_provider(
    session: Session, principal: Principal, data: ProviderCreate
) -> tuple[Provider, Operation]:
    """Register a provider and queue its first inventory sync."""
    cluster = inventory.get_cluster(session, principal, data.cluster_id)
    require(principal, WRITE)
    provider = Provider(
        id=new_id("prv"),
        name=data.name,
        kind=data.kind,
        zone_id=cluster.zone_id,
        cluster_id=cluster.id,
        description=data.description,
        importable=[],
    )
    _configure(provider, cluster.hypervisor, data.config, data.secret)
    if provider.kind == "simulator" and _realm_taken(session, provider):
        raise Conflict(f"realm {provider.config['realm']} is taken", code="duplicate-realm")
    session.add(provider)
    flush_or_conflict(session, f"a provider named {data.name!r} exists", "duplicate-name")
    audit.note(target_type="provider", target_id=provider.id)
    return provider, request_sync(session, principal, provider)


def _realm_taken(session: Session, provider: Provider) -> bool:
    others = session.scalars(select(Provider).where(Provider.kind == "simulator"))
    return any(p.config.get("realm") == provider.config["realm"] for p in others)


def update_provider(
    session: Session, principal: Principal, provider_id: str, data: ProviderUpdate
) -> Provider:
    provider = get_provider(session, principal, provider_id)
    require(principal, WRITE)
    if data.config is not None or data.secret is not None:
        cluster = inventory.get_cluster(session, principal, provider.cluster_id)
        config = data.config if data.config is not None else provider.config
        _configure(provider, cluster.hypervisor, config, data.secret)
    for key in ("name", "description", "state"):
        value = getattr(data, key)
        if value is not None:
            setattr(provider, key, value)
    flush_or_conflict(session, f"a provider named {data.name!r} exists", "duplicate-name")
    audit.note(target_type="provider", target_id=provider.id)
    return provider


def delete_provider(session: Session, principal: Principal, provider_id: str) -> None:
    """Only a provider nothing runs on: its hosts leave the inventory with it."""
    provider = get_provider(session, principal, provider_id)
    require(principal, WRITE)
    instances = compute.count_provider_instances(session, provider.id)
    hosts, placements = inventory.count_provider_hosts(session, provider.id)
    if instances or placements:
        raise Conflict(
            f"provider {provider.id} still has {instances} instance(s) and {placements} "
            f"placement(s) on its {hosts} host(s)",
            code="in-use",
        )
    inventory.remove_provider_hosts(session, provider.id)
    session.delete(provider)
    flush_or_conflict(session, f"provider {provider_id} is in use", "in-use")
    registry.forget(provider.id)
    audit.note(target_type="provider", target_id=provider.id)


def request_sync(session: Session, principal: Principal, provider: Provider) -> Operation:
    require(principal, WRITE)
    return create_operation(
        session,
        kind=SYNC,
        tenant_id=principal.tenant_id or provider.id,
        target_type="provider",
        target_id=provider.id,
        requested_by=principal.user_id,
    )


def import_machine(
    session: Session, principal: Principal, provider_id: str, data: ImportRequest
) -> Instance:
    """Adopt one of the machines the last sync listed as importable."""
    get_provider(session, principal, provider_id)
    require(principal, WRITE)
    provider = _locked(session, provider_id)  # two imports of one machine: one wins
    listed = {m["external_id"]: m for m in provider.importable}  # type: ignore[union-attr]
    machine = listed.get(data.external_id)
    if machine is None or data.external_id in compute.known_machines(session, provider_id):
        raise NotFound(f"provider {provider.id} listed no importable machine {data.external_id}")
    host_id = inventory.provider_hosts(session, provider.id).get(machine.get("host") or "")
    instance = compute.import_machine(
        session, principal, provider.id, machine, host_id, data, provider.zone_id
    )
    provider.importable = [m for m in provider.importable if m is not machine]
    return instance


# --- what a sync applies -------------------------------------------------------------------


def _host_fields(host: Any) -> dict[str, Any]:
    fields = asdict(host)
    fields["traits"] = list(fields["traits"])
    return fields


def apply_collected(
    session: Session, provider_id: str, collected: Collected, seen_at: datetime
) -> dict[str, int]:
    """Hosts into the inventory, machines reconciled, the rest listed as importable. The
    provider's row is locked, so two syncs of one provider apply one after the other."""
    provider = _locked(session, provider_id)
    if provider is None:
        return {}
    hosts = inventory.sync_provider_hosts(
        session, provider.id, provider.cluster_id, [_host_fields(h) for h in collected.hosts]
    )
    drift = compute.reconcile(session, provider.id, collected.machines, seen_at)
    ours = compute.known_machines(session, provider.id)
    foreign = [
        asdict(m) for m in collected.machines if m.external_id not in ours and m.instance_id is None
    ]
    provider.importable = [
        {k: v for k, v in m.items() if k != "addresses"} for m in foreign[:IMPORTABLE_SHOWN]
    ]
    provider.synced_at, provider.sync_error = now(), ""
    return {**hosts, **drift, "importable": len(foreign)}


def _locked(session: Session, provider_id: str) -> Provider | None:
    return session.scalars(
        select(Provider)
        .where(Provider.id == provider_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def record_sync_failure(session: Session, provider_id: str, error: str) -> None:
    provider = session.get(Provider, provider_id)
    if provider is not None:
        provider.sync_error = error[:2000]


def enabled_providers(session: Session) -> list[str]:
    return list(session.scalars(select(Provider.id).where(Provider.state == "enabled")))
