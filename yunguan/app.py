"""The FastAPI application: every domain router, the portal, health and metrics."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from yunguan import __version__
from yunguan.billing.api import router as billing_router
from yunguan.billing.reports import router as reports_router
from yunguan.catalog.api import router as catalog_router
from yunguan.compute.api import router as compute_router
from yunguan.core import secrets
from yunguan.core.config import Settings, get_settings
from yunguan.core.db import Database, set_database
from yunguan.core.errors import install_handlers, problem_response
from yunguan.core.idempotency import IdempotencyMiddleware
from yunguan.core.logging import configure_logging
from yunguan.core.metrics import metrics_endpoint
from yunguan.core.middleware import (
    AuditMiddleware,
    InputGuardMiddleware,
    RequestContextMiddleware,
)
from yunguan.identity.api import router as identity_router
from yunguan.identity.credentials import TokenSigner
from yunguan.inventory.api import router as inventory_router
from yunguan.network.api import router as network_router
from yunguan.notifications import service as notifications
from yunguan.notifications.api import router as notifications_router
from yunguan.orders.api import router as orders_router
from yunguan.providers.api import router as providers_router
from yunguan.quota.api import router as quota_router
from yunguan.scheduler.api import router as scheduler_router
from yunguan.web import portal
from yunguan.workflows import engine
from yunguan.workflows.api import router as operations_router

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, run_workflows: bool = True) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    db = Database(settings.resolved_database_url)
    set_database(db)
    secrets.configure(settings)
    notifications.configure(settings)
    signer = TokenSigner(db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # DBOS's launch and shutdown block; keep them off the event loop.
        if run_workflows:
            await anyio.to_thread.run_sync(engine.launch, settings)
        yield
        if run_workflows:
            await anyio.to_thread.run_sync(engine.shutdown)
        db.dispose()

    app = FastAPI(
        title="Yunguan",
        version=__version__,
        description="Cloud Management Platform API",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings, app.state.db, app.state.signer = settings, db, signer
    install_handlers(app)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, _exc: Exception) -> JSONResponse:
        return problem_response(
            500, "internal-error", "Internal error", "unexpected error; see server log", request
        )

    app.include_router(identity_router, prefix=API_PREFIX)
    app.include_router(quota_router, prefix=API_PREFIX)
    app.include_router(inventory_router, prefix=API_PREFIX)
    app.include_router(network_router, prefix=API_PREFIX)
    app.include_router(scheduler_router, prefix=API_PREFIX)
    app.include_router(providers_router, prefix=API_PREFIX)
    app.include_router(compute_router, prefix=API_PREFIX)
    app.include_router(catalog_router, prefix=API_PREFIX)
    app.include_router(orders_router, prefix=API_PREFIX)
    app.include_router(billing_router, prefix=API_PREFIX)
    app.include_router(reports_router, prefix=API_PREFIX)
    app.include_router(notifications_router, prefix=API_PREFIX)
    app.include_router(operations_router, prefix=API_PREFIX)
    portal.mount(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks = {"database": "ok", "workflows": "ok" if engine.is_launched() else "stopped"}
        try:
            with db.session(write=False) as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            checks["database"] = type(exc).__name__
        ready = checks["database"] == "ok" and (checks["workflows"] == "ok" or not run_workflows)
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    # Added innermost first: request ids and logs, then audit (which so records refused
    # input too), then the input guards, then idempotent replay.
    app.add_middleware(IdempotencyMiddleware, db=db, subject_of=signer.subject_of)
    app.add_middleware(InputGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware, db=db, subject_of=signer.subject_of)
    app.add_middleware(RequestContextMiddleware)
    return app
