"""Provider sync: collect a provider's inventory and reconcile it, on request (after
registration, or the ``sync`` action) and for every enabled provider on a schedule."""

from datetime import datetime
from typing import Any

from dbos import DBOS
from sqlalchemy.exc import SQLAlchemyError

from yunguan.core.clock import now
from yunguan.core.db import get_database
from yunguan.core.errors import Problem
from yunguan.providers import registry
from yunguan.providers import service as providers
from yunguan.providers.base import ProviderError
from yunguan.providers.models import Provider
from yunguan.workflows.service import advance, load

step = DBOS.step(retries_allowed=True, max_attempts=2, interval_seconds=1)


@step
def _sync(provider_id: str) -> dict[str, Any]:
    """Collect (outside any transaction: it may be slow), then apply in one. A provider that
    cannot be reached, or whose report cannot be applied, keeps its last inventory and
    shows why."""
    try:
        with get_database().session(write=False) as session:
            provider = session.get(Provider, provider_id)
            if provider is None:
                return {"error": f"provider {provider_id} is gone"}
            driver = registry.driver(provider)
        seen_at = now()
        collected = driver.collect()
        with get_database().session() as session:
            return providers.apply_collected(session, provider_id, collected, seen_at)
    except (ProviderError, Problem, SQLAlchemyError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        with get_database().session() as session:
            providers.record_sync_failure(session, provider_id, error)
        return {"error": error}


@DBOS.workflow()
def sync_provider(operation_id: str) -> dict[str, Any]:
    provider_id = load(operation_id).target_id  # type: ignore[union-attr]
    advance(operation_id, state="running", step="collect", progress=20)
    outcome = _sync(provider_id)
    if "error" in outcome:
        advance(operation_id, state="failed", error=outcome["error"][:2000])
    else:
        advance(operation_id, state="succeeded", step="done", progress=100)
    return outcome


@step
def _enabled() -> list[str]:
    with get_database().session(write=False) as session:
        return providers.enabled_providers(session)


@DBOS.workflow()
def sync_all(scheduled_time: datetime, context: Any) -> int:
    synced = 0
    for provider_id in _enabled():
        synced += "error" not in _sync(provider_id)
    return synced


WORKFLOWS = {providers.SYNC: sync_provider}
