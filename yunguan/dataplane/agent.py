"""``yunguan agent``: keeps one host's kernel equal to its document from the SDN controller.

The loop long-polls the document (a restarted agent fetches it in full), reconciles every
router namespace (a pass over a correct kernel changes nothing, so a restart loses no
traffic), removes the routers of VPCs the host no longer serves, and in ``ondemand`` VPCs
reports the destinations it reached through a gateway host (and the learned ones still in
use) so the controller grants, or keeps, direct entries. It also reports its status (the
version applied, what the kernel holds, the routers it could not reconcile) when that
changes and at least every ``HEARTBEAT_SECONDS``. While the controller cannot be reached,
the kernel keeps what it has.
"""

import threading
import time
from typing import Any

import httpx
import structlog

from yunguan.dataplane import desired, kernel, nft
from yunguan.dataplane.ports import NetnsVms, Taps

log = structlog.get_logger("yunguan.agent")
WAIT_SECONDS = 1.0  # the long poll; also how often the kernel is re-checked (new taps)
MAX_REPORT = 1000  # destinations per learn report
HEARTBEAT_SECONDS = 30.0  # the longest a status report waits (the controller: stale at 90 s)
MAX_ERRORS, ERROR_CHARS = 100, 500  # failed routers a status report names; each message


class Controller:
    """The controller's REST interface for agents; logs in again when its token expires."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.credentials = {"username": username, "password": password}
        self.http = httpx.Client(base_url=url.rstrip("/") + "/api/v1", timeout=WAIT_SECONDS + 10)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(2):
            if "Authorization" not in self.http.headers or attempt:
                token = self.http.post("/auth/token", json=self.credentials)
                token.raise_for_status()
                self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            response = self.http.request(method, path, **kwargs)
            if response.status_code != 401:
                break
        if response.status_code >= 400:
            response.raise_for_status()
        return response

    def document(self, host_id: str, since: int | None) -> dict[str, Any] | None:
        """The newer document, or None when it did not change within the wait."""
        params = {} if since is None else {"since": since, "wait": WAIT_SECONDS}
        response = self._request("GET", f"/sdn/hosts/{host_id}/document", params=params)
        return None if response.status_code == 304 else response.json()

    def learn(self, host_id: str, destinations: list[dict[str, str]]) -> None:
        self._request("POST", f"/sdn/hosts/{host_id}/learn", json={"destinations": destinations})

    def status(self, host_id: str, report: dict[str, Any]) -> None:
        self._request("POST", f"/sdn/hosts/{host_id}/status", json=report)


class Agent:
    def __init__(
        self,
        host_id: str,
        controller: Controller,
        kernel_: kernel.Kernel,
        plug: Taps | NetnsVms,
        *,
        refresh_seconds: float = 30.0,
    ) -> None:
        self.host_id = host_id
        self.controller = controller
        self.kernel = kernel_
        self.plug = plug
        self.refresh_seconds = refresh_seconds
        self.document: dict[str, Any] | None = None
        self.routers: list[desired.Router] = []
        self.reported: dict[tuple[str, str], float] = {}
        self.errors: dict[str, str] = {}  # vpc id -> why its router was not reconciled
        self.held: tuple[int, int] | None = None  # (routers, entries), counted after changes
        self.last_status: dict[str, Any] | None = None  # the last status report, and when
        self.last_status_at = 0.0

    def run(self, stop: threading.Event) -> None:
        log.info("agent started", host_id=self.host_id)
        while not stop.is_set():
            try:
                self.step()
            except httpx.HTTPError as exc:
                log.warning("controller unreachable; the kernel keeps its state", error=str(exc))
                stop.wait(WAIT_SECONDS)
            except Exception:  # a host's agent must outlive any one failed pass
                log.exception("pass failed; trying again")
                stop.wait(WAIT_SECONDS)
        self.kernel.ns.close()

    def step(self) -> None:
        """One pass: a newer document if any, the kernel reconciled, learning and status
        reported."""
        since = self.document["version"] if self.document else None
        fresh = self.controller.document(self.host_id, since)
        if fresh is not None:
            self.document = fresh
            self.routers = self.desired(fresh)
        if self.document is not None:
            self.report()  # first: replacing a router's nft table empties its sets
            changes = self.reconcile()
            if changes:
                log.info("reconciled", version=self.document["version"], changes=changes)
            self.report_status(self.document["version"], changes)

    def desired(self, document: dict[str, Any]) -> list[desired.Router]:
        return [
            desired.router(
                vpc,
                vtep=document["vtep"],
                prefix=self.kernel.prefix,
                groups=document["security_groups"],
            )
            for vpc in document["vpcs"]
        ]

    def reconcile(self) -> int:
        """Every pass, also with an unchanged document: it picks up taps that appeared and
        repairs netlink state changed by hand (the nft table is compared with what was
        applied)."""
        vtep = self.document["vtep"]  # type: ignore[index]
        changes, self.errors = 0, {}
        for router in self.routers:
            try:
                changes += self.kernel.apply(router, vtep, self.plug)
            except Exception as exc:  # one broken router must not stop the others
                log.exception("router not reconciled", vpc_id=router.vpc_id)
                if len(self.errors) < MAX_ERRORS:
                    self.errors[router.vpc_id] = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        for stale in self.kernel.routers() - {r.netns for r in self.routers}:
            self.kernel.remove_router(stale)
            changes += 1
        return changes

    def report(self) -> None:
        """Destinations reached through a gateway (new) or learned and in use (to keep)."""
        at = time.monotonic()
        due = []
        for router in self.routers:
            if not router.learning or router.netns not in self.kernel.rulesets:
                continue  # no table of ours there yet
            for name in (nft.REACHED, nft.ACTIVE):
                for ip in self.kernel.set_members(router.netns, name):
                    key = (router.vpc_id, ip)
                    if at - self.reported.get(key, -self.refresh_seconds) >= self.refresh_seconds:
                        due.append(key)
        for start in range(0, len(due), MAX_REPORT):
            batch = due[start : start + MAX_REPORT]
            self.controller.learn(self.host_id, [{"vpc_id": v, "ip": ip} for v, ip in batch])
            self.reported.update((key, at) for key in batch)

    def report_status(self, version: int, changes: int) -> None:
        """The version applied, what the kernel holds and the routers that failed: told when
        any of it changes, else every ``HEARTBEAT_SECONDS``. Counting entries reads every
        router, so it is done after changes (and while a router fails) only."""
        if changes or self.errors or self.held is None:
            self.held = self.kernel.held()
        routers, entries = self.held
        status = {
            "applied_version": version,
            "routers": routers,
            "entries": entries,
            "errors": self.errors,
        }
        at = time.monotonic()
        if status == self.last_status and at - self.last_status_at < HEARTBEAT_SECONDS:
            return
        self.last_status, self.last_status_at = status, at
        try:
            self.controller.status(self.host_id, status)
        except httpx.HTTPError as exc:  # told again at the next change or heartbeat
            log.warning("status not reported", error=str(exc))
