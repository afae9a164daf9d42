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
        self.ids = [h.id for h in hosts]
        self.names = [h.name for h in hosts]
        self.index = {host_id: i for i, host_id in enumerate(self.ids)}

        self.zone_ids = [z for z, _, _ in zones]
        zone_index = {z: i for i, z in enumerate(self.zone_ids)}
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
            self.claims[i] = row.claims
            self.enabled[i] = row.state == "enabled"
        self.synced_at = time.monotonic()

    def set_pool(self, pool_id: str | None, allocated: int | None) -> None:
        if pool_id is not None and allocated is not None and pool_id in self.pool_ids:
            self.pool_allocated[self.pool_ids.index(pool_id)] = allocated

    def scratch(self) -> "HostTable":
        """A copy whose usage may be changed freely (what-if planning)."""
        twin = copy.copy(self)
        twin.used = [u.copy() for u in self.used]
        twin.pool_allocated = self.pool_allocated.copy()
        twin.claims = self.claims.copy()
        return twin

    def add(self, i: int, demand: Demand, sign: int = 1) -> None:
        """Account a demand on host ``i`` of a scratch table (or take it off)."""
        disk = 0 if self.pooled[i] else demand.disk_gb
        for n, amount in enumerate((demand.vcpus, demand.memory_mb, disk, demand.gpus)):
            self.used[n][i] += sign * amount
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

    def strategy_for(self, tenant_path: str, zone_ids: Iterable[str]) -> tuple[str, str | None]:
        """The deepest tenant policy on the path; else the policy of the zone the request
        can land in (when every candidate zone has the same one); else the default."""
        for tenant_id in reversed([t for t in tenant_path.split("/") if t]):
            if tenant_id in self.tenant_policy:
                return self.tenant_policy[tenant_id]
        policies = {self.zone_policy.get(z) for z in zone_ids}
        if len(policies) == 1 and None not in policies:
            return policies.pop()  # type: ignore[return-value]
        return DEFAULT_STRATEGY, None

    def decide(self, demand: Demand, exclude: Iterable[str] = ()) -> Decision:
        decision = Decision(None, None, DEFAULT_STRATEGY, None)
        mask = self.enabled.copy()
        for host_id in exclude:
            if host_id in self.index:
                mask[self.index[host_id]] = False
        remaining = len(self.ids)
        for name, keep in self._filters(demand):
            if name == "state":
                after = int(np.count_nonzero(mask))
            else:
                mask &= keep()
                after = int(np.count_nonzero(mask))
            decision.steps.append(Step(name, remaining, after))
            remaining = after
            if not after:
                decision.strategy, decision.policy_id = self.strategy_for(
                    demand.tenant_path, [demand.zone_id] if demand.zone_id else []
                )
                return decision
        candidates = np.flatnonzero(mask)
        zones = [self.zone_ids[z] for z in np.unique(self.zone[candidates])]
        strategy, policy_id = self.strategy_for(demand.tenant_path, zones)
        decision.strategy, decision.policy_id = strategy, policy_id
        chosen = self._weigh(candidates, demand, strategy)
        decision.host, decision.host_id = chosen, self.ids[chosen]
        return decision

    def _filters(self, demand: Demand) -> Iterable[tuple[str, Any]]:
        yield "state", None
        if demand.zone_id is not None:
            wanted = self.zone_ids.index(demand.zone_id) if demand.zone_id in self.zone_ids else -1
            yield "zone", lambda: self.zone == wanted
        yield "zone-visibility", lambda: self._visible_zones(demand.tenant_path)[self.zone]
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

    def _visible_zones(self, tenant_path: str) -> np.ndarray:
        ancestors = {t for t in tenant_path.split("/") if t}
        granted = np.array([bool(g & ancestors) for g in self.zone_grants], dtype=bool)
        return self.zone_public | granted

    def _hypervisor_ok(self, demand: Demand) -> np.ndarray:
        if demand.baremetal is not None:
            return self.hypervisor == BAREMETAL
        if demand.hypervisor is not None:
            return self.hypervisor == HYPERVISORS.index(demand.hypervisor)
        return self.hypervisor != BAREMETAL

    def _has_traits(self, traits: Sequence[str]) -> np.ndarray:
        if any(t not in self.trait_names for t in traits):
            return np.zeros(len(self.ids), dtype=bool)
        return self.traits[:, [self.trait_names.index(t) for t in traits]].all(axis=1)

    def _on_hosts(self, host_ids: Iterable[str]) -> np.ndarray:
        on = np.zeros(len(self.ids), dtype=bool)
        on[[self.index[h] for h in host_ids if h in self.index]] = True
        return on

    def _fits(self, demand: Demand) -> np.ndarray:
        vcpus, memory, disk, gpus = (demand.vcpus, demand.memory_mb, demand.disk_gb, demand.gpus)
        ok = self.used[0] + vcpus <= self.limit[0]
        ok &= self.used[1] + memory <= self.limit[1]
        if gpus:
            ok &= self.used[3] + gpus <= self.limit[3]
        if disk:
            local = self.used[2] + disk <= self.limit[2]
            if self.pool_ids:
                pool_ok = self.pool_allocated + disk <= self.pool_limit
                local = np.where(self.pooled, pool_ok[self.pool], local)
            ok &= local
        return ok

    def _baremetal_match(self, spec: tuple[int, int, int, int, int]) -> np.ndarray:
        count, mhz, disks, disk_size, memory = spec
        wanted = np.array([count, mhz, disks, disks * disk_size, memory], dtype=np.int64)
        return (self.profile == wanted).all(axis=1) & (self.claims == 0)

    def _weigh(self, candidates: np.ndarray, demand: Demand, strategy: str) -> int:
        """pack: the fullest host that still fits (best fit); spread: the emptiest."""
        if demand.baremetal is not None:
            return int(candidates[0])
        if not demand.gpus:  # keep GPU hosts for requests that need them, when we can
            plain = candidates[self.limit[3][candidates] == 0]
            candidates = plain if plain.size else candidates
        score = np.zeros(candidates.size)
        for n, amount in ((0, demand.vcpus), (1, demand.memory_mb)):
            limit = self.limit[n][candidates]
            after = self.used[n][candidates] + amount
            score += np.divide(after, limit, out=np.ones(candidates.size), where=limit > 0)
        best = np.argmax(score) if strategy == "pack" else np.argmin(score)
        return int(candidates[best])


LIMITS = ("vcpu_limit", "memory_limit_mb", "disk_limit_gb", "gpus")
USED = ("used_vcpus", "used_memory_mb", "used_disk_gb", "used_gpus")
PROFILE = ("cpu_sockets", "cpu_mhz", "disk_count", "disk_gb", "memory_mb")
