"""The portal: server-rendered pages (Jinja2) made lively with HTMX.

Pages call the same domain services as the REST API. The session is the same signed token
as the API's, carried in an HttpOnly, SameSite=Lax cookie; form posts must also come from
this origin.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.orm import Session

from yunguan.core.clock import now
from yunguan.core.errors import Forbidden, Problem, Unauthorized
from yunguan.core.pagination import PageParams
from yunguan.identity import service
from yunguan.identity.credentials import SESSION_COOKIE
from yunguan.identity.deps import get_signer, resolve
from yunguan.identity.schemas import TokenRequest
from yunguan.identity.scope import Principal
from yunguan.notifications import service as notifications
from yunguan.workflows import engine
from yunguan.workflows import service as operations
from yunguan.workflows.models import Operation

WEB = Path(__file__).resolve().parent
TEMPLATE_DIRS = [WEB / "templates"] + [
    WEB.parent / domain / "templates"
    for domain in (
        "identity",
        "inventory",
        "scheduler",
        "quota",
        "network",
        "compute",
        "providers",
        "catalog",
        "notifications",
        "orders",
        "billing",
    )
]

CENT, SUB_CENT = Decimal("0.01"), Decimal("0.0001")
templates = Jinja2Templates(
    env=Environment(
        loader=ChoiceLoader([FileSystemLoader(d) for d in TEMPLATE_DIRS]),
        autoescape=select_autoescape(default=True),
    )
)


def ago(moment: datetime) -> str:
    """How long before now ``moment`` was, as people say it ("3 min ago")."""
    seconds = max(0, int((now() - moment).total_seconds()))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return "just now"


def money(amount: Decimal, grouped: bool = True) -> str:
    """An amount as people read it: to the cent ("1,200.00"), or to the hundredth of a
    cent when it has one (a form shows the stored price exactly: ``grouped=False``)."""
    exact = amount.quantize(SUB_CENT, ROUND_HALF_UP)
    shown = exact if exact != exact.quantize(CENT) else exact.quantize(CENT)
    return f"{shown:,}" if grouped else f"{shown}"


templates.env.globals["ago"] = ago
templates.env.filters["money"] = money


class LoginRequired(Exception):
    """Raised by a page whose visitor has no valid session."""


def navigation(principal: Principal) -> list[dict[str, Any]]:
    """Sections of the side bar; what a principal sees depends on its roles."""
    mine = [{"href": "/", "label": "Dashboard"}]
    if principal.can("tenant:read"):
        mine.append({"href": "/tenants", "label": "Tenants"})
    if principal.can("user:read"):
        mine.append({"href": "/users", "label": "Users"})
    if principal.can("group:read"):
        mine.append({"href": "/groups", "label": "Groups"})
    if principal.can("resource:read"):
        mine.append({"href": "/quotas", "label": "Quotas"})
        mine.append({"href": "/networks", "label": "Networks"})
        mine.append({"href": "/instances", "label": "Instances"})
        mine.append({"href": "/catalog", "label": "Catalog"})
        mine.append({"href": "/orders", "label": "My orders"})
        mine.append({"href": "/services", "label": "My services"})
    if principal.can("order:approve"):
        mine.append({"href": "/approvals", "label": "Approvals"})
    if principal.can("billing:read"):
        mine.append({"href": "/billing", "label": "Billing"})
        mine.append({"href": "/billing/reports", "label": "Cost reports"})
        mine.append({"href": "/billing/accounts", "label": "Billing accounts"})
    if principal.can("audit:read"):
        mine.append({"href": "/audit", "label": "Audit log"})
    if principal.is_platform_admin:
        platform = [
            {"href": "/infrastructure", "label": "Infrastructure"},
            {"href": "/providers", "label": "Providers"},
            {"href": "/ip-pools", "label": "IP pools"},
            {"href": "/sdn", "label": "SDN agents"},
            {"href": "/placement", "label": "Placement"},
            {"href": "/admin/catalog/templates", "label": "Catalog admin"},
            {"href": "/admin/billing/price-books", "label": "Price books"},
            {"href": "/admin/billing/discounts", "label": "Discounts"},
            {"href": "/admin/billing/coupons", "label": "Coupons"},
            {"href": "/admin/billing/vendors", "label": "Vendors"},
            {"href": "/admin/billing/quarantine", "label": "Usage quarantine"},
            {"href": "/roles", "label": "Roles"},
            {"href": "/api/v1/docs", "label": "API reference"},
        ]
        return [{"title": "Platform administration", "items": mine + platform}]
    return [{"title": "My organisation", "items": mine}]


def page_principal(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    try:
        return resolve(request, token)
    except Unauthorized:
        raise LoginRequired


def same_origin(request: Request) -> None:
    """Refuse form posts that do not show they come from this site (browsers send Origin on
    every POST); defence in depth beside the SameSite cookie."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    public_url = request.app.state.settings.public_url
    expected = urlsplit(public_url).netloc if public_url else request.url.netloc
    if not origin or urlsplit(origin).netloc != expected:
        raise Forbidden("cross-site or origin-less form post refused", code="cross-site")


def unread_notifications(request: Request, principal: Principal) -> int:
    """The inbox badge's count: one COUNT, made only when a whole page is rendered."""
    with request.app.state.db.session(write=False) as session:
        return notifications.unread_count(session, principal)


def render(request: Request, template: str, principal: Principal | None, **context: Any):
    context |= {
        "principal": principal,
        "nav": navigation(principal) if principal else [],
        "path": request.url.path,
        "unread": partial(unread_notifications, request, principal),
    }
    return templates.TemplateResponse(request, template, context)


ALL = PageParams(limit=1000)
Panel = Callable[..., Response]
FormText = Annotated[str, Form(max_length=300)]


def message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return exc.detail if isinstance(exc, Problem) else str(exc)


def panel(request: Request, template: str, principal: Principal, status: int, **context):
    """A part of a page that forms replace with HTMX; ``status`` carries a form's error."""
    response = render(request, template, principal, **context)
    response.status_code = status
    return response


def page(request: Request, title: str, panel_of: Panel, intro: str = "") -> Response:
    """A full page around a panel; HTMX requests get the panel alone."""
    principal = page_principal(request)
    inner = panel_of(request, principal)
    if request.headers.get("hx-request"):
        return inner
    return render(
        request, "panel_page.html", principal, title=title, intro=intro, panel=inner.body.decode()
    )


def submit(request: Request, panel_of: Panel, change: Callable[[Session, Principal], str]):
    """Run a form's change in one transaction; answer its panel with a notice or the error."""
    principal = page_principal(request)
    same_origin(request)
    try:
        with request.app.state.db.session() as session:
            notice = change(session, principal)
    except (Problem, ValidationError) as exc:
        status = exc.status if isinstance(exc, Problem) else 422
        return panel_of(request, principal, error=message(exc), status=status)
    return panel_of(request, principal, notice=notice)


Work = Callable[[Session, Principal], tuple[str, Sequence[Operation]]]
"""A form's change that records long operations: (notice, the operations to queue)."""


def submit_work(request: Request, panel_of: Panel, change: Work) -> Response:
    """``submit`` for a change that records operations: their workflows are queued once its
    transaction has committed (a crash in between leaves them pending, resubmitted at the
    next start)."""
    queued: list[tuple[str, str]] = []

    def recorded(session: Session, principal: Principal) -> str:
        notice, started = change(session, principal)
        queued.extend((operation.id, operation.kind) for operation in started)
        return notice

    response = submit(request, panel_of, recorded)
    for operation_id, kind in queued:
        engine.submit(operation_id, kind)
    return response


def latest_operation(session: Session, principal: Principal, target_id: str) -> Operation | None:
    rows, _ = operations.list_operations(session, principal, PageParams(limit=1), target_id)
    return rows[0] if rows else None


router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return render(request, "login.html", None, error=None)


@router.post("/login", name="auth.login")
def login_submit(
    request: Request, username: str = Form(max_length=64), password: str = Form(max_length=256)
) -> Response:
    same_origin(request)
    try:
        credentials = TokenRequest(username=username, password=password)
        token, ttl = service.authenticate(
            request.app.state.db,
            get_signer(request),
            request.app.state.settings,
            credentials.username,
            credentials.password,
        )
    except (Problem, ValidationError) as exc:
        status = exc.status if isinstance(exc, Problem) else 401
        detail = exc.detail if isinstance(exc, Problem) else "invalid username or password"
        response = render(request, "login.html", None, error=detail, username=username)
        response.status_code = status
        return response
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", name="auth.logout")
def logout_submit(request: Request) -> Response:
    same_origin(request)
    try:
        principal = page_principal(request)
        with request.app.state.db.session() as session:
            service.logout(session, principal)
    except LoginRequired:
        pass
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    principal = page_principal(request)
    with request.app.state.db.session(write=False) as session:
        me = service.me(session, principal)
    return render(request, "dashboard.html", principal, me=me)


def mount(app: FastAPI) -> None:
    from yunguan.billing.views import router as billing_pages
    from yunguan.catalog.views import router as catalog_pages
    from yunguan.compute.views import router as compute_pages
    from yunguan.identity.views import router as identity_pages
    from yunguan.inventory.views import router as inventory_pages
    from yunguan.network.views import router as network_pages
    from yunguan.notifications.views import router as notification_pages
    from yunguan.orders.views import router as order_pages
    from yunguan.providers.views import router as provider_pages
    from yunguan.quota.views import router as quota_pages
    from yunguan.scheduler.views import router as scheduler_pages

    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    app.include_router(router)
    for pages in (
        identity_pages,
        quota_pages,
        inventory_pages,
        scheduler_pages,
        network_pages,
        compute_pages,
        provider_pages,
        catalog_pages,
        notification_pages,
        order_pages,
        billing_pages,
    ):
        app.include_router(pages)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)
