"""Periodic jobs, as DBOS schedules: every tick runs once across all worker processes.

- storage pools are re-measured every ``YUNGUAN_STORAGE_REFRESH_MINUTES``;
- quota: due reclaims are carried out and stale reservations expire, every minute;
- network: learned SDN entries past their TTL are removed (and their hosts told),
  addresses whose cool-down is over return to their pools' free lists, and old port events
  are pruned, every minute;
- services: approval tasks past their deadline escalate, subscriptions are reminded of
  their expiry, expire (stopped, or renewed automatically) and are released after their
  retention period, every minute;
- providers: every enabled provider's inventory is collected and reconciled, every
  ``YUNGUAN_PROVIDER_SYNC_MINUTES``;
- notifications: due email and webhook deliveries are sent (failed ones retried with
  backoff), every minute;
- billing: every account's month is rated into its draft invoice, drafts past their grace
  period are finalized, late usage of finalized months corrected, and suspended prepaid
  accounts' resources stopped (released after the retention period), at :05 every hour.
"""

from datetime import datetime
from typing import Any

from dbos import DBOS

from yunguan.billing import jobs
from yunguan.core.config import Settings, get_settings
from yunguan.core.db import get_database
from yunguan.network import ipam
from yunguan.network.sdn import learning, tables
from yunguan.notifications import delivery
from yunguan.quota import service as quota
from yunguan.scheduler import service as scheduler
from yunguan.workflows import engine, orders, providers

step = DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=1)


@step
def _refresh_pools() -> int:
    return scheduler.refresh_pools(get_database())


@DBOS.workflow()
def refresh_storage_pools(scheduled_time: datetime, context: Any) -> int:
    return _refresh_pools()


@step
def _settle_quota() -> int:
    with get_database().session() as session:
        admitted = quota.run_due(session)
        quota.expire(session)
    return admitted


@DBOS.workflow()
def settle_quota(scheduled_time: datetime, context: Any) -> int:
    return _settle_quota()


@step
def _network_housekeeping() -> int:
    done = 0
    for job in (learning.expire, ipam.return_cooled, tables.prune):  # one transaction each
        with get_database().session() as session:
            done += job(session)
    return done


@DBOS.workflow()
def network_housekeeping(scheduled_time: datetime, context: Any) -> int:
    return _network_housekeeping()


@step
def _deliver_notifications() -> int:
    return delivery.deliver_due(get_database(), get_settings())


@DBOS.workflow()
def deliver_notifications(scheduled_time: datetime, context: Any) -> int:
    return _deliver_notifications()


@step
def _bill() -> tuple[dict[str, int], list[tuple[str, str]]]:
    with get_database().session() as session:
        summary, operations = jobs.hourly(session)
        return summary, [(operation.id, operation.kind) for operation in operations]


@DBOS.workflow()
def bill(scheduled_time: datetime, context: Any) -> dict[str, int]:
    summary, operations = _bill()
    for operation_id, kind in operations:
        engine.submit(operation_id, kind)
    return summary


def schedule(settings: Settings) -> None:
    DBOS.apply_schedules(
        [
            {
                "schedule_name": "storage-pool-refresh",
                "workflow_fn": refresh_storage_pools,
                "schedule": settings.storage_refresh_cron,
            },
            {"schedule_name": "quota-settle", "workflow_fn": settle_quota, "schedule": "* * * * *"},
            {
                "schedule_name": "network-housekeeping",
                "workflow_fn": network_housekeeping,
                "schedule": "* * * * *",
            },
            {
                "schedule_name": "service-lifecycle",
                "workflow_fn": orders.service_lifecycle,
                "schedule": "* * * * *",
            },
            {
                "schedule_name": "provider-sync",
                "workflow_fn": providers.sync_all,
                "schedule": f"*/{settings.provider_sync_minutes} * * * *",
            },
            {
                "schedule_name": "notification-delivery",
                "workflow_fn": deliver_notifications,
                "schedule": "* * * * *",
            },
            {"schedule_name": "billing", "workflow_fn": bill, "schedule": "5 * * * *"},
        ]
    )
