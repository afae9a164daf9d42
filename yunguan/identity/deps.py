"""Who is calling: the principal behind the request's bearer token."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yunguan.core import audit
from yunguan.core.errors import Unauthorized
from yunguan.identity import service
from yunguan.identity.credentials import TokenSigner
from yunguan.identity.scope import Principal

_bearer = HTTPBearer(auto_error=False, description="token from POST /api/v1/auth/token")


def get_signer(request: Request) -> TokenSigner:
    return request.app.state.signer


def resolve(request: Request, token: str) -> Principal:
    with request.app.state.db.session(write=False) as session:
        principal = service.principal_from_token(session, get_signer(request), token)
    request.state.principal = principal
    audit.note(
        actor_id=principal.user_id,
        actor_name=principal.username,
        actor_tenant_id=principal.tenant_id,
    )
    return principal


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("send 'Authorization: Bearer <token>'", code="missing-token")
    return resolve(request, credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
