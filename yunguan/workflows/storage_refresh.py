"""The periodic re-measurement of storage pools (``YUNGUAN_STORAGE_REFRESH_MINUTES``).

A DBOS schedule: every tick runs once across all worker processes."""

from datetime import datetime
from typing import Any

from dbos import DBOS

from yunguan.core.db import get_database
from yunguan.scheduler import service as scheduler

SCHEDULE = "storage-pool-refresh"


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=1)
def _refresh_all() -> int:
    return scheduler.refresh_pools(get_database())


@DBOS.workflow()
def refresh_storage_pools(scheduled_time: datetime, context: Any) -> int:
    return _refresh_all()


def schedule(cron: str) -> None:
    DBOS.apply_schedules(
        [{"schedule_name": SCHEDULE, "workflow_fn": refresh_storage_pools, "schedule": cron}]
    )
