"""The inbox page: every logged-in user's own notifications, newest first, to open and to
mark read or unread."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yunguan.core.pagination import PageParams
from yunguan.identity.scope import Principal
from yunguan.notifications import service as notifications
from yunguan.notifications.schemas import NotificationAction
from yunguan.web.portal import FormText, page, panel, submit

router = APIRouter(include_in_schema=False)
SHOWN = PageParams(limit=100)


def _inbox_panel(
    request: Request, principal: Principal, *, error=None, notice=None, status: int = 200
) -> Response:
    with request.app.state.db.session(write=False) as session:
        rows, more = notifications.list_inbox(session, principal, SHOWN)
        unread = notifications.unread_count(session, principal)
    return panel(
        request,
        "inbox_panel.html",
        principal,
        status,
        notifications=rows,
        more=more is not None,
        unread_now=unread,
        error=error,
        notice=notice,
    )


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(request: Request) -> Response:
    return page(request, "Inbox", _inbox_panel)


@router.post("/inbox/{notification_id}/actions", name="notification.action")
def inbox_mark(request: Request, notification_id: str, action: FormText) -> Response:
    def change(session: Session, principal: Principal) -> str:
        wanted = NotificationAction.model_validate({"action": action}).action
        notifications.mark(session, principal, notification_id, wanted)
        return f"Marked {wanted}."

    return submit(request, _inbox_panel, change)


@router.post("/inbox/read-all", name="notification.read-all")
def inbox_read_all(request: Request) -> Response:
    def change(session: Session, principal: Principal) -> str:
        return f"Marked {notifications.mark_all_read(session, principal)} read."

    return submit(request, _inbox_panel, change)
