"""Metering and billing on PostgreSQL (``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts a
durable throw-away cluster). Three figures, each on its own database:

- ``ingest``: usage events recorded per second by 4 clients sending batches of 10,000
  (one transaction each), of which 10% repeat an earlier event and 0.1% differ from it
  (quarantined); only recorded events count towards the rate.
- ``rate``: 1,000,000 events of one month (50,000 instances of 1,000 tenants, ten runs
  each) rated into invoice lines: intervals derived, sliced, summed, priced and written.
- ``month_end``: 10,000 tenants, each its own account (half of them prepaid, topped up)
  with five instances and a draft left by the month's hourly runs: the first hourly run
  after the grace period rates the month a last time and finalizes every invoice (numbered,
  frozen, booked in the ledger, settled from the charges or the wallets).

Prints JSON lines and appends to docs/benchmarks.md. ``BENCH_CASES`` picks the figures
(``make bench`` measures each on a cluster of its own, so one's data does not slow the next).
"""

import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.report import durable_postgres, record_section

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
BATCH = 10_000
MONTH = "2027-03"
START = datetime(2027, 2, 28, 16, 0, tzinfo=UTC)  # 2027-03-01 00:00 in Asia/Shanghai


def prepare(url: str, tenants: int) -> tuple[object, list[str]]:
    """A migrated database with ``tenants`` tenants under the root, each with a billing
    account, and a published price book; their ids."""
    from sqlalchemy import insert

    from yunguan.billing import pricing
    from yunguan.billing.models import BillingAccount
    from yunguan.core.db import Database
    from yunguan.core.ids import new_id
    from yunguan.core.migrate import upgrade
    from yunguan.identity.models import Tenant
    from yunguan.identity.service import ensure_root_tenant
    from yunguan.models import load_all

    load_all()
    db = Database(url)
    upgrade(db)
    with db.session() as session:
        root = ensure_root_tenant(session)
        rows = []
        for n in range(tenants):
            tenant_id = new_id("t")
            rows.append(
                {
                    "id": tenant_id,
                    "name": f"t{n}",
                    "parent_id": root.id,
                    "path": f"{root.path}{tenant_id}/",
                }
            )
        session.execute(insert(Tenant), rows)
        accounts = [
            {"id": new_id("ba"), "tenant_id": row["id"], "tenant_path": row["path"]} for row in rows
        ]
        session.execute(insert(BillingAccount), accounts)
        items = [
            {"meter": "instance.running", "price_key": f"fl-{n}", "unit_price": f"0.{n + 1}5"}
            for n in range(4)
        ]
        book = pricing.create_book(session, name="list", currency="CNY", items=items)
        pricing.publish(session, book, datetime(2020, 1, 1, tzinfo=UTC))
    return db, [row["id"] for row in rows]


def runs(tenants: list[str], instances: int, per_instance: int, seed: int) -> list[dict]:
    """Start/stop pairs in March: ``per_instance`` runs of 10 to 600 minutes each."""
    rng, events = random.Random(seed), []
    for n in range(instances):
        tenant, vm = tenants[n % len(tenants)], f"i-b{seed}x{n}"
        at = START + timedelta(minutes=rng.randrange(60))
        for run in range(per_instance):
            length = timedelta(minutes=rng.randrange(10, 600))
            for action, when in (("start", at), ("stop", at + length)):
                events.append(
                    {
                        "source": "bench",
                        "event_id": f"{vm}:{run}:{action}",
                        "tenant_id": tenant,
                        "resource_type": "instance",
                        "resource_id": vm,
                        "meter": "instance.running",
                        "action": action,
                        "price_key": f"fl-{n % 4}",
                        "occurred_at": when,
                    }
                )
            at += length + timedelta(minutes=rng.randrange(5, 60))
    return events


def ingest(url: str) -> dict:
    from yunguan.billing import metering

    db, tenants = prepare(url, 1000)
    unique = runs(tenants, 20_000, 10, seed=1)  # 400,000 events
    rng = random.Random(2)
    repeats = [dict(e) for e in rng.sample(unique, len(unique) // 10)]
    for copy in repeats[: len(unique) // 1000]:
        copy["price_key"] = "fl-other"  # a differing copy: quarantined
    stream = unique + repeats
    rng.shuffle(stream)
    batches = [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]
    totals = {"inserted": 0, "duplicates": 0, "quarantined": 0}
    lock = threading.Lock()

    def client(mine: list[list[dict]]) -> None:
        for batch in mine:
            with db.session() as session:
                result = metering.ingest(session, batch)
            with lock:
                for key in totals:
                    totals[key] += getattr(result, key)

    threads = [threading.Thread(target=client, args=(batches[n::CLIENTS],)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    db.dispose()
    return {
        "figure": "ingest",
        "events_sent": len(stream),
        "clients": CLIENTS,
        "batch": BATCH,
        "recorded_per_s": round(totals["inserted"] / elapsed),
        "seconds": round(elapsed, 1),
        **totals,
    }


def load(db, events: list[dict]) -> None:
    """Record ``events``, then let PostgreSQL settle (vacuumed, analysed, checkpointed), so
    what is timed next is the steady state, not the load's aftermath."""
    from sqlalchemy import text

    from yunguan.billing import metering

    for start in range(0, len(events), 50_000):
        with db.session() as session:
            metering.ingest(session, events[start : start + 50_000])
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CHECKPOINT"))


def rate(url: str) -> dict:
    from sqlalchemy import func, select

    from yunguan.billing import invoices
    from yunguan.billing.models import BillingAccount, InvoiceLine

    db, tenants = prepare(url, 1000)
    load(db, runs(tenants, 50_000, 10, seed=3))  # 1,000,000 events
    with db.session() as session:
        session.execute(select(func.count()).select_from(BillingAccount))  # warm the pool
    started = time.perf_counter()
    with db.session() as session:
        accounts = list(session.scalars(select(BillingAccount)))
        invoices.rate_period(session, MONTH, accounts, datetime(2027, 5, 1, tzinfo=UTC))
    elapsed = time.perf_counter() - started
    with db.session() as session:
        lines = session.scalar(select(func.count()).select_from(InvoiceLine))
    db.dispose()
    return {
        "figure": "rate",
        "events": 1_000_000,
        "accounts": len(tenants),
        "lines": lines,
        "seconds": round(elapsed, 2),
    }


def month_end(url: str) -> dict:
    from sqlalchemy import func, select

    from yunguan.billing import invoices, wallets
    from yunguan.billing.models import BillingAccount, Invoice

    db, tenants = prepare(url, 10_000)
    load(db, runs(tenants, 50_000, 2, seed=4))  # 200,000 events, five instances a tenant
    with db.session() as session:  # half the accounts prepaid, topped up
        prepaid = list(session.scalars(select(BillingAccount).order_by(BillingAccount.id)))[::2]
        for account in prepaid:
            account.mode = "prepaid"
            wallets.receive(session, account, "top-up", Decimal(1000), f"bench-{account.id}")
    with db.session() as session:  # the hourly runs of March left drafts
        accounts = list(session.scalars(select(BillingAccount)))
        invoices.rate_period(session, MONTH, accounts, datetime(2027, 3, 31, 15, tzinfo=UTC))
    at = datetime(2027, 4, 10, tzinfo=UTC)  # March's grace period is over
    started = time.perf_counter()
    with db.session() as session:
        summary = invoices.tick(session, at)
    elapsed = time.perf_counter() - started
    with db.session() as session:
        final = session.scalar(select(func.count()).where(Invoice.state == "finalized"))
    db.dispose()
    return {
        "figure": "month_end",
        "tenants": len(tenants),
        "finalized": final,
        "seconds": round(elapsed, 2),
        **{f"tick_{k}": v for k, v in summary.items()},
    }


def main() -> None:
    cases = {"ingest": ingest, "rate": rate, "month_end": month_end}
    chosen = os.environ.get("BENCH_CASES", ",".join(cases)).split(",")
    urls = durable_postgres([f"bench_billing_{name}" for name in chosen])
    if not urls:
        raise SystemExit("set YUNGUAN_TEST_PG_URL (make bench starts a PostgreSQL cluster)")
    results = []
    for name in chosen:
        result = cases[name](urls[f"bench_billing_{name}"])
        print(json.dumps(result), flush=True)
        results.append(result)
    record_section(
        "bench/billing.py",
        results,
        ("events_sent", "events", "accounts", "tenants", "clients", "batch"),
    )


if __name__ == "__main__":
    main()
