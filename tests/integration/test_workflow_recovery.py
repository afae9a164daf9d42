"""Kill the server in the middle of a tenant deletion; the restarted server finishes it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import new_database_url
from tests.support import network
from tests.support.api import Api
from tests.support.compute import create, simulated_zone
from tests.support.compute_checks import NOTHING, held
from tests.support.waiting import wait_operation
from yunguan.core.db import Database
from yunguan.identity.models import Tenant, Token, User

pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "Recovery-Passw0rd!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``yunguan serve`` as its own process, the way an operator runs it."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, fault: str = "") -> None:
        env = {**self.env, "YUNGUAN_FAULT_POINTS": fault}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "yunguan", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def server(tmp_path: Path):
    url = new_database_url(tmp_path)
    env = {
        **os.environ,
        "YUNGUAN_DATABASE_URL": url,
        "YUNGUAN_DATA_DIR": str(tmp_path),
        "YUNGUAN_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "yunguan",
            "admin",
            "create-user",
            "--username",
            "root-admin",
            "--password",
            ADMIN_PASSWORD,
            "--platform-admin",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    running = Server(env, _free_port(), tmp_path / "server.log")
    yield running, Database(url)
    running.stop()


@pytest.mark.parametrize(
    "point",
    ["tenant-delete.after-check", "tenant-delete.after-revoke", "tenant-delete.after-members"],
)
def test_killed_deletion_completes_after_restart(server, point: str) -> None:
    process, db = server
    process.start(fault=f"{point}=crash")
    with httpx.Client(base_url=process.url, timeout=30) as http:
        admin = Api(http).login("root-admin", ADMIN_PASSWORD)
        tenant = admin.tenant(admin.me["tenant_id"], "Short-lived")
        member = admin.as_user(tenant["id"], "short-lived-user")
        accepted = admin.ok(admin.delete(f"/tenants/{tenant['id']}"), 202)
    assert process.wait_exit() == 70  # died at the fault point, mid-workflow

    with db.session(write=False) as session:
        assert session.get(Tenant, tenant["id"]).state == "deleting"
        assert session.get(Tenant, tenant["id"]) is not None

    process.start()
    with httpx.Client(base_url=process.url, timeout=30) as http:
        admin = Api(http).login("root-admin", ADMIN_PASSWORD)
        operation = wait_operation(admin, accepted["operation"]["id"])
        assert operation["state"] == "succeeded"
        assert admin.get(f"/tenants/{tenant['id']}").status_code == 404
        member_check = Api(http, member.token).get("/me")
        assert member_check.status_code == 401
        deleted = admin.ok(admin.get("/audit-events", params={"action": "tenant.deleted"}))
        assert [e["target_id"] for e in deleted["items"]] == [tenant["id"]]
    with db.session(write=False) as session:
        assert session.scalars(select(User).where(User.username == "short-lived-user")).all() == []
        assert session.scalars(select(Token).where(Token.user_id == member.me["id"])).all() == []
    db.dispose()


def test_separate_worker_process_runs_the_workflows(server, tmp_path: Path) -> None:
    """API-only server (no workers) + ``yunguan worker``: the worker does the deletion."""
    process, db = server
    process.env = {**process.env, "YUNGUAN_RUN_WORKERS": "false"}
    process.start()
    with httpx.Client(base_url=process.url, timeout=30) as http:
        admin = Api(http).login("root-admin", ADMIN_PASSWORD)
        tenant = admin.tenant(admin.me["tenant_id"], "Handled-by-worker")
        accepted = admin.ok(admin.delete(f"/tenants/{tenant['id']}"), 202)
        time.sleep(1.5)
        waiting = admin.ok(admin.get(f"/operations/{accepted['operation']['id']}"))
        assert waiting["state"] == "pending"  # nobody runs workflows yet
        worker_env = {
            **process.env,
            "YUNGUAN_RUN_WORKERS": "true",
            "YUNGUAN_EXECUTOR_ID": "worker-1",
        }
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "yunguan", "worker"],
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            operation = wait_operation(admin, accepted["operation"]["id"], timeout=60)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
        assert operation["state"] == "succeeded"
        assert admin.get(f"/tenants/{tenant['id']}").status_code == 404
    db.dispose()


@pytest.mark.parametrize(
    "point",
    [
        "provision.after-quota",
        "provision.after-claim",
        "provision.after-port",
        "provision.after-create",
        "provision.after-network",
    ],
)
def test_killed_provisioning_resumes_and_leaks_nothing(server, point: str) -> None:
    """The worker dies between two provisioning steps; the restarted one finishes the
    instance, which then holds exactly one of everything, and deleting it frees all."""
    process, db = server
    process.start(fault=f"{point}=crash")
    with httpx.Client(base_url=process.url, timeout=30) as http:
        admin = Api(http).login("root-admin", ADMIN_PASSWORD)
        place = simulated_zone(admin)
        team = admin.tenant(admin.me["tenant_id"], "Team")
        vpc = network.vpc(admin, place["zone"]["id"], "10.9.0.0/16", tenant_id=team["id"])
        network.vxnet(admin, vpc["id"], "10.9.1.0/24")
        accepted = create(admin, place, tenant_id=team["id"])
    assert process.wait_exit() == 70  # died at the fault point, mid-workflow

    process.start()
    with httpx.Client(base_url=process.url, timeout=30) as http:
        admin = Api(http).login("root-admin", ADMIN_PASSWORD)
        operation = wait_operation(admin, accepted["operation"]["id"])
        assert operation["state"] == "succeeded", operation
        instance = admin.ok(admin.get(f"/instances/{accepted['resource']['id']}"))
        assert instance["state"] == "running"
        one_each = {"reservations": 1, "claims": 1, "ports": 1, "machines": 1}
        assert held(admin, db, team["id"]) == one_each
        deleted = admin.ok(admin.delete(f"/instances/{instance['id']}"), 202)
        assert wait_operation(admin, deleted["operation"]["id"])["state"] == "succeeded"
        assert held(admin, db, team["id"]) == NOTHING
    db.dispose()
