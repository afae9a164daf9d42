"""Shared fixtures. The backend is SQLite unless ``YUNGUAN_TEST_BACKEND=postgres`` (then
``YUNGUAN_TEST_PG_URL`` names the server; ``make test`` runs the suite once each way)."""

import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from tests.support.api import ADMIN_PASSWORD, Api
from tests.support.pgcluster import create_database
from yunguan.app import create_app
from yunguan.cli.main import app as cli
from yunguan.core import clock
from yunguan.core.config import Settings
from yunguan.core.db import Database, set_database
from yunguan.core.migrate import upgrade
from yunguan.identity.models import Group, GroupMember, Tenant, Token, User
from yunguan.identity.service import bootstrap_user
from yunguan.models import load_all

BACKEND = os.environ.get("YUNGUAN_TEST_BACKEND", "sqlite")


def pytest_report_header() -> str:
    return f"yunguan backend: {BACKEND}"


def _postgres_database(name: str) -> str:
    server = os.environ.get("YUNGUAN_TEST_PG_URL")
    if not server:
        pytest.exit("YUNGUAN_TEST_BACKEND=postgres needs YUNGUAN_TEST_PG_URL (use 'make test')")
    return create_database(server, name)


def new_database_url(directory: Path) -> str:
    """An empty database on the backend under test."""
    if BACKEND == "postgres":
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        return _postgres_database(f"yunguan_test_{worker}_{secrets.token_hex(4)}")
    return f"sqlite:///{directory / 'yunguan.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        log_level="WARNING",
        run_schedules=False,  # tests run the periodic jobs themselves, at the moment they choose
        webhook_private_targets=True,  # the tests' receivers listen on 127.0.0.1
    )


def prepare_database(settings: Settings) -> dict[str, str]:
    """Schema at head plus the platform admin (``admin``, ``ADMIN_PASSWORD``); returns the
    ids the tests rely on. The data-plane benchmark prepares its database the same way."""
    load_all()
    db = Database(settings.resolved_database_url)
    upgrade(db)
    with db.session() as session:
        admin = bootstrap_user(session, "admin", ADMIN_PASSWORD, ["platform-admin"], settings)
        ids = {"admin_id": admin.id, "root_id": admin.tenant_id}
    db.dispose()
    return ids


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> dict[str, str]:
    """Schema at head plus the platform admin; returns the ids the tests rely on."""
    return prepare_database(settings)


def _wipe(db: Database, keep_user: str) -> None:
    from yunguan.billing import models as billing
    from yunguan.catalog import models as catalog
    from yunguan.compute import models as compute
    from yunguan.core.audit import AuditEvent
    from yunguan.core.idempotency import IdempotencyRecord
    from yunguan.inventory import models as inventory
    from yunguan.network import models as network
    from yunguan.notifications import models as notifications
    from yunguan.orders import models as orders
    from yunguan.providers import models as providers
    from yunguan.quota import models as quota
    from yunguan.scheduler import models as scheduler
    from yunguan.workflows.models import Operation

    with db.session() as session:
        for model in (AuditEvent, IdempotencyRecord, Operation, GroupMember, Group):
            session.execute(delete(model))
        session.execute(update(inventory.Cluster).values(primary_pool_id=None))
        session.execute(delete(quota.QuotaReservation))
        session.execute(delete(quota.QuotaNode))
        for model in (
            notifications.Delivery,
            notifications.Webhook,
            notifications.Notification,
            orders.Subscription,
            orders.ServiceInstance,
            orders.ApprovalTask,
            orders.OrderEvent,
            orders.Order,
            orders.ApprovalPolicy,
            catalog.CatalogItem,
            catalog.Category,
            catalog.TemplateVersion,
            catalog.ServiceTemplate,
            billing.InvoiceLine,
            billing.Invoice,
            billing.InvoiceCounter,
            billing.VendorStatementLine,
            billing.VendorStatement,
            billing.Vendor,
            billing.LedgerEntry,
            billing.LedgerTransaction,
            billing.LedgerAccount,
            billing.Payment,
            billing.CouponRedemption,
            billing.Coupon,
            billing.Discount,
            billing.PlanSubscription,
            billing.BillingAccount,
            billing.PriceItem,
            billing.PriceBook,
            billing.UsageQuarantine,
            billing.UsageEvent,
            compute.Snapshot,
            compute.Volume,
            providers.SimulatedDisk,
            compute.InstanceEvent,
            compute.Instance,
            compute.Image,
            compute.Flavor,
            providers.SimulatedMachine,
            providers.Provider,
            network.LearnedRoute,
            network.PortEvent,
            network.SdnHost,
            network.Gateway,
            network.Eip,
            network.Port,
            network.SecurityGroup,
            network.Vxnet,
            network.Vpc,
            network.Segment,
            network.IpAddress,
            network.IpChunk,
            network.IpPool,
            network.VlanPool,
            scheduler.Claim,
            scheduler.PlacementGroup,
            scheduler.PlacementPolicy,
            inventory.Host,
            inventory.StoragePool,
            inventory.Cluster,
            inventory.Pod,
            inventory.ZoneAccess,
            inventory.Zone,
            inventory.Region,
        ):
            session.execute(delete(model))
        session.execute(delete(Token))
        session.execute(delete(User).where(User.id != keep_user))
        session.execute(delete(Tenant).where(Tenant.parent_id.is_not(None)))
        admin = session.get(User, keep_user)
        admin.failed_logins, admin.locked_until, admin.state = 0, None, "active"


@pytest.fixture
def app(settings: Settings, migrated: dict[str, str]):
    application = create_app(settings, run_workflows=False)
    yield application
    clock.set_clock(None)
    _quiesce()
    for attempt in range(5):  # a workflow the test left running may still write
        try:
            _wipe(application.state.db, migrated["admin_id"])
            break
        except OperationalError:  # a deadlock with it: PostgreSQL aborted the wipe
            if attempt == 4:
                raise
            time.sleep(0.5)
    application.state.db.dispose()


def _quiesce(timeout: float = 10) -> None:
    """Wait a little for the workflows a test started to end before its data goes (they
    would fail on vanished rows, or deadlock with the wipe)."""
    from dbos import DBOS

    from yunguan.workflows import engine

    def running() -> bool:  # asked from a thread of its own: a browser test's loop runs here
        listed = DBOS.list_workflows(status="PENDING", load_input=False, load_output=False)
        return bool(listed)

    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(1) as pool:
        while engine.is_launched() and time.monotonic() < deadline:
            if not pool.submit(running).result():
                return
            time.sleep(0.1)


@pytest.fixture
def db(app) -> Database:
    set_database(app.state.db)
    return app.state.db


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture
def admin(client: TestClient, migrated: dict[str, str]) -> Api:
    return Api(client).login("admin", ADMIN_PASSWORD)


@pytest.fixture
def root_id(migrated: dict[str, str]) -> str:
    return migrated["root_id"]


@pytest.fixture(scope="session")
def workflows(settings: Settings, migrated: dict[str, str]) -> Iterator[None]:
    """DBOS launched once for the tests that run workflows in-process."""
    from yunguan.workflows import engine

    db = Database(settings.resolved_database_url)
    set_database(db)  # until a test's app sets its own
    engine.launch(settings)
    yield
    engine.shutdown()
    db.dispose()


class LiveServer:
    def __init__(self, app, port: int = 0) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The app served by a real uvicorn in a thread: real sockets, real concurrency."""
    with LiveServer(app) as url:
        yield url


@pytest.fixture
def live_admin(live_url: str, migrated: dict[str, str]) -> Iterator[Api]:
    with httpx.Client(base_url=live_url, timeout=30) as http:
        yield Api(http).login("admin", ADMIN_PASSWORD)


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(live_url: str, tmp_path, monkeypatch):
    """The CLI, logged in to the live server as the platform admin: ``run(*args)`` answers
    its output and asserts its exit code."""
    monkeypatch.setenv("YUNGUAN_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str, expect: int = 0, stdin: str | None = None) -> str:
        result = runner.invoke(cli, list(args), input=stdin)
        assert result.exit_code == expect, result.output
        return result.output

    invoke("login", live_url, "--username", "admin", "--password", ADMIN_PASSWORD)
    return invoke
