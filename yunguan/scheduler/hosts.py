"""The scheduler's picture of every host, as numpy arrays (one slot per host).

A decision is a handful of vectorised comparisons over these arrays, then one argmin or
argmax over the survivors: no Python loop over hosts. The database stays the authority:
a claim is a conditional UPDATE, and its answer (the host's new usage) is written back
here, so a stale picture costs a retry, never an over-full host.
"""

import copy
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from yunguan.inventory.models import HYPERVISORS

BAREMETAL = HYPERVISORS.index("baremetal")
DEFAULT_STRATEGY = "spread"


@dataclass(frozen=True)
class Demand:
    """What one placement needs. ``baremetal`` is (cpu count, MHz, disk count, GB per disk,
    memory MB): a node matches only when its profile is exactly that."""

    tenant_path: str
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    gpus: int = 0
    traits: tuple[str, ...] = ()
    zone_id: str | None = None
    hypervisor: str | None = None
    baremetal: tuple[int, int, int, int, int] | None = None
    group_policy: str | None = None
    group_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Step:
    filter: str
    before: int
    after: int


@dataclass
class Decision:
    host: int | None
    host_id: str | None
    strategy: str
    policy_id: str | None
    steps: list[Step] = field(default_factory=list)

    def explain(self) -> str:
        removed = [
            f"{s.filter} removed {s.before - s.after}" for s in self.steps if s.before > s.after
        ]
        if self.steps and self.steps[-1].filter == "baremetal" and self.steps[-1].after == 0:
            return "bare-metal resources insufficient: " + ", ".join(removed)
        return "no valid host: " + (", ".join(removed) or "there are no hosts")


def _ints(values: Iterable[Any]) -> np.ndarray:
    return np.fromiter(values, dtype=np.int64)


class HostTable:
    """Hosts, their pools and zones, the placement policies — as of one inventory
    generation. Usage columns are refreshed in place; anything else means a new table."""

    def __init__(
        self,
        generation: tuple[str, int],
        hosts: Sequence[Any],
        clusters: dict[str, tuple[str, str | None]],
        pools: Sequence[Any],
        zones: Sequence[tuple[str, bool, list[str]]],
        policies: Sequence[tuple[str, str, str | None, str | None]],
    ) -> None:
        self.generation = generation
        self.lock = threading.Lock()
        self.resynced_at = time.monotonic()  # when usage was last read for every host
        zone_index = {z: i for i, (z, _, _) in enumerate(zones)}
        # a host whose cluster or zone went between the loader's queries is left out
        hosts = [h for h in hosts if h.cluster_id in clusters and h.zone_id in zone_index]
        self.ids = [h.id for h in hosts]
        self.names = [h.name for h in hosts]
        self.index = {host_id: i for i, host_id in enumerate(self.ids)}

        self.zone_ids = [z for z, _, _ in zones]
        self.zone_public = np.array([public for _, public, _ in zones], dtype=bool)
        self.zone_grants = [set(granted) for _, _, granted in zones]
        self.zone = _ints(zone_index[h.zone_id] for h in hosts)

        self.pool_ids = [p.id for p in pools]
        pool_index = {p: i for i, p in enumerate(self.pool_ids)}
        self.pool_limit = _ints(p.limit_gb for p in pools)
        self.pool_allocated = _ints(p.allocated_gb for p in pools)
        self.cluster_ids = [h.cluster_id for h in hosts]
        self.hypervisor = _ints(HYPERVISORS.index(clusters[h.cluster_id][0]) for h in hosts)
        self.pool = _ints(pool_index.get(clusters[h.cluster_id][1] or "", -1) for h in hosts)
        self.pooled = self.pool >= 0

        self.limit = [_ints(getattr(h, c) for h in hosts) for c in LIMITS]
        self.used = [np.zeros(len(hosts), dtype=np.int64) for _ in LIMITS]
        self.free = [limit.copy() for limit in self.limit]
        # 1 / limit of vcpus and memory, for utilisation scores without a division each time
        self.inverse = [
            np.divide(1.0, limit, out=np.zeros(len(hosts)), where=limit > 0)
            for limit in self.limit[:2]
        ]
        self.gpu_free_host = self.limit[3] == 0
        self.claims = np.zeros(len(hosts), dtype=np.int64)
        self.enabled = np.zeros(len(hosts), dtype=bool)
        self.profile = np.stack([_ints(getattr(h, c) for h in hosts) for c in PROFILE], axis=1)

        self.trait_names = sorted({t for h in hosts for t in h.traits})
        trait_index = {t: i for i, t in enumerate(self.trait_names)}
        self.traits = np.zeros((len(hosts), len(self.trait_names)), dtype=bool)
        for i, h in enumerate(hosts):
            self.traits[i, [trait_index[t] for t in h.traits]] = True

        self.tenant_policy = {t: (s, p) for p, s, _, t in policies if t}
        self.zone_policy = {z: (s, p) for p, s, z, _ in policies if z}
        with_policy = [zone_index[z] for z in self.zone_policy if z in zone_index]
        self.in_policy_zone = np.isin(self.zone, with_policy)
        self._visible: dict[str, np.ndarray] = {}
        self.set_usage(hosts)

    # --- keeping the picture current -------------------------------------------------------

    def set_usage(self, rows: Iterable[Any]) -> None:
        """Write hosts' usage as the database reported it (rows of USAGE_COLUMNS)."""
        for row in rows:
            i = self.index.get(row.id)
            if i is None:
                continue
            for n, column in enumerate(USED):
                self.used[n][i] = getattr(row, column)
                self.free[n][i] = self.limit[n][i] - self.used[n][i]
            self.claims[i] = row.claims
            self.enabled[i] = row.state == "enabled"

    def set_pool(self, pool_id: str | None, allocated: int | None) -> None:
        if pool_id is not None and allocated is not None and pool_id in self.pool_ids:
            self.pool_allocated[self.pool_ids.index(pool_id)] = allocated

    def scratch(self) -> "HostTable":
        """A copy whose usage may be changed freely (what-if planning)."""
        twin = copy.copy(self)
        twin.used = [u.copy() for u in self.used]
        twin.free = [f.copy() for f in self.free]
        twin.pool_allocated = self.pool_allocated.copy()
        twin.claims = self.claims.copy()
        return twin

    def add(self, i: int, demand: Demand, sign: int = 1) -> None:
        """Account a demand on host ``i`` of a scratch table (or take it off)."""
        disk = 0 if self.pooled[i] else demand.disk_gb
        for n, amount in enumerate((demand.vcpus, demand.memory_mb, disk, demand.gpus)):
            self.used[n][i] += sign * amount
            self.free[n][i] -= sign * amount
        if self.pooled[i]:
            self.pool_allocated[self.pool[i]] += sign * demand.disk_gb
        self.claims[i] += sign

    def utilisation(self) -> np.ndarray:
        """Per host, the larger of its vcpu and memory utilisation (0 where no limit)."""
        shares = [
            np.divide(
                self.used[n], self.limit[n], out=np.zeros(len(self.ids)), where=self.limit[n] > 0
            )
            for n in (0, 1)
        ]
        return np.maximum(*shares)

    # --- deciding --------------------------------------------------------------------------

    def strategy_for(self, demand: Demand, candidates: np.ndarray) -> tuple[str, str | None]:
        """The deepest tenant policy on the requester's path; else the policy of the zone
        the request names, or that every candidate zone shares; else the default."""
        for tenant_id in reversed([t for t in demand.tenant_path.split("/") if t]):
            if tenant_id in self.tenant_policy:
                return self.tenant_policy[tenant_id]
        if demand.zone_id is not None:
            return self.zone_policy.get(demand.zone_id, (DEFAULT_STRATEGY, None))
        if not self.zone_policy or (candidates & ~self.in_policy_zone).any():
            return DEFAULT_STRATEGY, None
        zones = {self.zone_ids[z] for z in np.unique(self.zone[candidates])}
        policies = {self.zone_policy[z] for z in zones}
        return policies.pop() if len(policies) == 1 else (DEFAULT_STRATEGY, None)

    def decide(self, demand: Demand, exclude: Iterable[str] = ()) -> Decision:
        """Filter, then weigh. ``exclude``: hosts already tried, or the one being emptied."""
        decision = Decision(None, None, DEFAULT_STRATEGY, None)
        mask = np.ones(len(self.ids), dtype=bool)
        remaining = len(self.ids)
        for name, keep in self._filters(demand, exclude):
            mask &= keep()
            after = int(np.count_nonzero(mask))
            decision.steps.append(Step(name, remaining, after))
            remaining = after
            if not after:
                decision.strategy, decision.policy_id = self.strategy_for(demand, mask)
                return decision
        decision.strategy, decision.policy_id = self.strategy_for(demand, mask)
        chosen = self._weigh(mask, demand, decision.strategy)
        decision.host, decision.host_id = chosen, self.ids[chosen]
        return decision

    def _filters(self, demand: Demand, exclude: Iterable[str]) -> Iterable[tuple[str, Any]]:
        yield "state", lambda: self.enabled
        excluded = [self.index[h] for h in exclude if h in self.index]
        if excluded:
            yield "excluded", lambda: ~self._on_hosts(self.ids[i] for i in excluded)
        if demand.zone_id is not None:
            wanted = self.zone_ids.index(demand.zone_id) if demand.zone_id in self.zone_ids else -1
            yield "zone", lambda: self.zone == wanted
        yield "zone-visibility", lambda: self._visible_hosts(demand.tenant_path)
        yield "hypervisor", lambda: self._hypervisor_ok(demand)
        if demand.traits:
            yield "traits", lambda: self._has_traits(demand.traits)
        if demand.group_policy == "affinity" and demand.group_hosts:
            yield "affinity", lambda: self._on_hosts(demand.group_hosts)
        if demand.group_policy == "anti-affinity" and demand.group_hosts:
            yield "anti-affinity", lambda: ~self._on_hosts(demand.group_hosts)
        if demand.baremetal is not None:
            yield "baremetal", lambda: self._baremetal_match(demand.baremetal)
        else:
            yield "capacity", lambda: self._fits(demand)

    def _visible_hosts(self, tenant_path: str) -> np.ndarray:
        """Hosts in zones the tenant may use (remembered per tenant for this table)."""
        visible = self._visible.get(tenant_path)
        if visible is None:
            ancestors = {t for t in tenant_path.split("/") if t}
            granted = np.array([bool(g & ancestors) for g in self.zone_grants], dtype=bool)
            visible = (self.zone_public | granted)[self.zone]
            if len(self._visible) >= 1024:
                self._visible.clear()
            self._visible[tenant_path] = visible
        return visible

    def _hypervisor_ok(self, demand: Demand) -> np.ndarray:
        """Bare-metal requests get bare-metal nodes, and nothing else does."""
        if demand.baremetal is not None:
            return self.hypervisor == BAREMETAL
        ok = self.hypervisor != BAREMETAL
        if demand.hypervisor is not None:
            ok &= self.hypervisor == HYPERVISORS.index(demand.hypervisor)
        return ok

    def _has_traits(self, traits: Sequence[str]) -> np.ndarray:
        if any(t not in self.trait_names for t in traits):
            return np.zeros(len(self.ids), dtype=bool)
        return self.traits[:, [self.trait_names.index(t) for t in traits]].all(axis=1)

    def _on_hosts(self, host_ids: Iterable[str]) -> np.ndarray:
        on = np.zeros(len(self.ids), dtype=bool)
        on[[self.index[h] for h in host_ids if h in self.index]] = True
        return on

    def _fits(self, demand: Demand) -> np.ndarray:
        ok = self.free[0] >= demand.vcpus
        ok &= self.free[1] >= demand.memory_mb
        if demand.gpus:
            ok &= self.free[3] >= demand.gpus
        if demand.disk_gb:
            local = self.free[2] >= demand.disk_gb
            if self.pool_ids:
                pool_ok = self.pool_allocated + demand.disk_gb <= self.pool_limit
                local = np.where(self.pooled, pool_ok[self.pool], local)
            ok &= local
        return ok

    def _baremetal_match(self, spec: tuple[int, int, int, int, int]) -> np.ndarray:
        count, mhz, disks, disk_size, memory = spec
        wanted = np.array([count, mhz, disks, disks * disk_size, memory], dtype=np.int64)
        return (self.profile == wanted).all(axis=1) & (self.claims == 0)

    def _weigh(self, mask: np.ndarray, demand: Demand, strategy: str) -> int:
        """pack: the fullest host that still fits (best fit); spread: the emptiest. Scores
        are computed over every host and masked: contiguous arithmetic beats gathering."""
        if demand.baremetal is not None:
            return int(np.argmax(mask))
        if not demand.gpus:  # keep GPU hosts for requests that need them, when we can
            plain = mask & self.gpu_free_host
            mask = plain if plain.any() else mask
        score = (self.used[0] + demand.vcpus) * self.inverse[0]
        score += (self.used[1] + demand.memory_mb) * self.inverse[1]
        if strategy == "pack":
            return int(np.argmax(np.where(mask, score, -np.inf)))
        return int(np.argmin(np.where(mask, score, np.inf)))


LIMITS = ("vcpu_limit", "memory_limit_mb", "disk_limit_gb", "gpus")
USED = ("used_vcpus", "used_memory_mb", "used_disk_gb", "used_gpus")
PROFILE = ("cpu_sockets", "cpu_mhz", "disk_count", "disk_gb", "memory_mb")
