"""Billing under concurrency (PostgreSQL: SQLite runs one writer at a time): a payment
reference raced by two requests counts once, a deadlock asks the client to retry, and the
watermark a rating records waits for usage still being written.

Each race is arranged, not hoped for: a request is held at the point that matters until the
other is there too, or waits on a lock in the database (``pg_stat_activity``)."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from tests.billing.conftest import account, book, event
from tests.conftest import BACKEND
from tests.support.api import Api
from yunguan.billing import metering, schemas, wallets
from yunguan.billing.models import UsageEvent
from yunguan.core.db import Database

postgres_only = pytest.mark.skipif(
    BACKEND != "postgres", reason="SQLite runs one writer at a time: there is no race to show"
)

HOURLY = {"meter": "instance.running", "basis": "hour", "unit_price": "1.00"}


def lock_waiters(db: Database) -> int:
    """How many sessions of the test's database wait for a lock held by another."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with db.engine.connect() as connection:
        return connection.execute(query).scalar_one()


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a guard against a hang, not a measure: it is never hit when
    the code under test is right)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def second_client(app, api: Api) -> Api:
    """Another API client of the same principal (its own connection to the app)."""
    return Api(TestClient(app), api.token, api.me)


# --- payments -------------------------------------------------------------------------------


@postgres_only
def test_two_top_ups_with_one_reference_at_once_record_one_payment(
    app, biller: Api, root_id: str, db, monkeypatch
) -> None:
    tenant = biller.tenant(root_id, "Payer")
    book(biller, "list", [HOURLY])
    acct = account(biller, tenant["id"])
    arrived = []
    made = wallets.new_id

    def held(prefix: str) -> str:
        """A request about to insert its payment waits for the other to be about to do
        the same, or to wait on a lock (the account's, which this one holds)."""
        if prefix == "pay":
            arrived.append(threading.get_ident())
            until(lambda: len(arrived) == 2 or lock_waiters(db) > 0, "the other top-up")
        return made(prefix)

    monkeypatch.setattr(wallets, "new_id", held)
    top_up = {"action": "top-up", "amount": "10.00", "reference": "bank-9", "method": "transfer"}
    path = f"/billing-accounts/{acct['id']}/actions"
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda api: api.post(path, top_up), [biller, second_client(app, biller)])
        )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert len(arrived) == 1  # the second found the first's payment
    payments = biller.ok(biller.get("/payments", params={"account_id": acct["id"]}))["items"]
    assert [(p["reference"], Decimal(p["amount"])) for p in payments] == [("bank-9", 10)]
    [found] = biller.ok(biller.get("/wallets", params={"tenant_id": tenant["id"]}))["items"]
    assert Decimal(found["cash"]) == 10

    other = {**top_up, "amount": "11.00"}
    refused = biller.post(path, other)
    assert (refused.status_code, refused.json()["code"]) == (409, "payment-conflict")


# --- deadlocks ------------------------------------------------------------------------------


@postgres_only
def test_two_batches_that_deadlock_answer_one_409_to_retry(
    app, biller: Api, root_id: str, db
) -> None:
    """Two batches of the same new events in opposite orders (one instant, so ingest keeps
    the batch's order), large enough to go by COPY: each inserts its first event, then both
    wait at the event in the middle, held by a transaction of the test's; once that commits
    each needs the event the other holds. PostgreSQL aborts one."""
    tenant_id = biller.tenant(root_id, "Metered")["id"]
    at = "2027-03-10T00:00:00Z"
    first, middle, last = (event(tenant_id, f"i-{n}", "start", at) for n in "abc")

    def batch(*ordered: dict) -> list[dict]:
        later = [event(tenant_id, f"i-x{n}", "start", "2027-03-11T00:00:00Z") for n in range(200)]
        return [*ordered, *later]

    batches = [batch(first, middle, last), batch(last, middle, first)]
    assert len(batches[0]) >= metering.COPY_FROM
    with ThreadPoolExecutor(2) as pool:
        with db.session() as holder:
            metering.ingest(holder, [schemas.UsageEventIn(**middle).model_dump()])
            sent = [
                pool.submit(api.post, "/usage-events", {"events": events})
                for api, events in zip([biller, second_client(app, biller)], batches, strict=True)
            ]
            until(lambda: lock_waiters(db) >= 2, "both batches to wait at the middle event")
        answers = [future.result() for future in sent]
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    [refused] = [a for a in answers if a.status_code == 409]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "concurrent-update"
    assert "retry" in refused.json()["detail"]
    again = batches[[a.status_code for a in answers].index(409)]
    assert biller.ok(biller.post("/usage-events", {"events": again}))["inserted"] == 200
    with db.session() as session:
        assert len(session.scalars(select(UsageEvent.seq)).all()) == 403


def test_contention_from_the_driver_or_sqlalchemy_answers_409_and_nothing_else_does(app) -> None:
    """The one handler: a deadlock or serialization failure, raised by SQLAlchemy or by the
    driver's own cursor (COPY), is a 409 to retry; another database error stays a 500."""
    errors = {
        "raw-deadlock": psycopg.errors.DeadlockDetected("deadlock detected"),
        "raw-serialization": psycopg.errors.SerializationFailure("could not serialize"),
        "wrapped": OperationalError("SELECT 1", {}, psycopg.errors.DeadlockDetected("deadlock")),
        "other": psycopg.errors.UndefinedTable("no such table"),
    }

    def fail(name: str) -> None:
        raise errors[name]

    app.add_api_route("/test-only/fail/{name}", fail, methods=["POST"])
    client = TestClient(app, raise_server_exceptions=False)
    for name in ("raw-deadlock", "raw-serialization", "wrapped"):
        answer = client.post(f"/test-only/fail/{name}")
        assert (answer.status_code, answer.json()["code"]) == (409, "concurrent-update"), name
    answer = client.post("/test-only/fail/other")
    assert (answer.status_code, answer.json()["code"]) == (500, "internal-error")


# --- the watermark --------------------------------------------------------------------------


def _usage(tenant_id: str, event_id: str) -> dict:
    at = datetime(2027, 3, 10, tzinfo=UTC)
    return {
        "source": "test",
        "event_id": event_id,
        "tenant_id": tenant_id,
        "resource_type": "instance",
        "resource_id": f"i-{event_id}",
        "meter": "instance.running",
        "action": "start",
        "occurred_at": at,
    }


def _seq(session, event_id: str) -> int:
    return session.scalar(select(UsageEvent.seq).where(UsageEvent.event_id == event_id))


@postgres_only
def test_the_watermark_waits_for_usage_still_being_written(db, root_id: str) -> None:
    """An ingest in flight holds a lower ``seq`` than one committed after it: the
    watermark is read only once the first has committed, and so covers its event."""
    happened: list[str] = []
    asking = threading.Event()

    def read_watermark() -> int:
        with db.session() as session:
            asking.set()
            seq = metering.watermark(session)
            happened.append("watermark read")
            return seq

    with ThreadPoolExecutor(1) as pool:
        with db.session() as slow:
            metering.ingest(slow, [_usage(root_id, "in-flight")])
            in_flight = _seq(slow, "in-flight")
            with db.session() as quick:
                metering.ingest(quick, [_usage(root_id, "committed")])
            with db.session() as session:
                assert _seq(session, "committed") > in_flight
            reading = pool.submit(read_watermark)
            asking.wait()
            until(lambda: reading.done() or lock_waiters(db) == 1, "the watermark to wait")
            happened.append("in-flight ingest commits")
        seq = reading.result()
    assert happened == ["in-flight ingest commits", "watermark read"]
    with db.session() as session:
        assert seq == _seq(session, "committed") > _seq(session, "in-flight") == in_flight


def test_the_watermark_is_the_last_seq_when_nothing_is_in_flight(db, root_id: str) -> None:
    with db.session() as session:
        assert metering.watermark(session) == 0
        metering.ingest(session, [_usage(root_id, "one"), _usage(root_id, "two")])
    with db.session() as session:
        assert metering.watermark(session) == _seq(session, "two")
