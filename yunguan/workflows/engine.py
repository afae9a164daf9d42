"""DBOS: durable workflows checkpointed in the system database.

``yunguan serve`` launches it with the API (in-process workers); ``yunguan worker`` launches it
alone. A workflow interrupted by a crash is resumed when a process with the same executor id
starts again.
"""

import os

from dbos import DBOS, SetWorkflowID

from yunguan.core.config import Settings
from yunguan.workflows import service

WORK_QUEUE = "yunguan-work"
_launched = False


def launch(settings: Settings) -> None:
    """Start DBOS. A process that runs no workers gets an executor id of its own, so it never
    resumes (and so never runs twice) the workflows of the worker processes."""
    global _launched
    if _launched:
        return
    import yunguan.workflows.registry  # noqa: F401  (registers every workflow with DBOS)

    DBOS(
        config={
            "name": "yunguan",
            "system_database_url": settings.resolved_system_database_url,
            "executor_id": (
                settings.executor_id
                if settings.run_workers
                else f"{settings.executor_id}-api-{os.getpid()}"
            ),
            "log_level": settings.log_level,
        }
    )
    if not settings.run_workers:
        DBOS.listen_queues([])
    DBOS.launch()
    DBOS.register_queue(
        WORK_QUEUE, worker_concurrency=settings.workflow_concurrency, polling_interval_sec=0.05
    )
    _launched = True
    if settings.run_workers:
        if settings.run_schedules:
            from yunguan.workflows import periodic

            periodic.schedule(settings)
        _resubmit_pending()


def shutdown() -> None:
    global _launched
    if _launched:
        DBOS.destroy(workflow_completion_timeout_sec=5)
        _launched = False


def is_launched() -> bool:
    return _launched


def submit(operation_id: str, kind: str) -> None:
    """Queue the workflow of an operation; the operation id is the workflow id, so
    submitting twice runs it once."""
    from yunguan.workflows.registry import WORKFLOWS

    with SetWorkflowID(operation_id):
        DBOS.enqueue_workflow(WORK_QUEUE, WORKFLOWS[kind], operation_id)


def _resubmit_pending() -> None:
    """Operations committed but never queued (a crash between the two) are queued now."""
    for operation_id, kind in service.pending_operations():
        submit(operation_id, kind)
