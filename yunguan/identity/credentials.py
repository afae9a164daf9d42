"""Password hashing and policy, and the signed bearer tokens."""

import re
import secrets
from datetime import datetime
from typing import Any

import jwt
from pwdlib import PasswordHash
from sqlalchemy.orm import Session
from starlette.types import Scope

from yunguan.core.clock import now
from yunguan.core.db import Database
from yunguan.core.errors import BadRequest
from yunguan.identity.models import Secret

_hasher = PasswordHash.recommended()
_DUMMY_HASH = _hasher.hash("timing-equaliser")
JWT_ALGORITHM = "HS256"
SIGNING_KEY = "jwt-signing-key"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-ish time whether or not the user exists."""
    return _hasher.verify(password, password_hash or _DUMMY_HASH) and password_hash is not None


def check_password_policy(password: str, username: str, min_length: int) -> None:
    problems = []
    if len(password) < min_length:
        problems.append(f"at least {min_length} characters")
    if len(password) > 256:
        problems.append("at most 256 characters")
    classes = sum(
        bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    if classes < 3:
        problems.append("three of: lower case, upper case, digits, symbols")
    if username and username.lower() in password.lower():
        problems.append("must not contain the username")
    if problems:
        raise BadRequest("password too weak: " + "; ".join(problems), code="weak-password")


def ensure_signing_key(session: Session) -> None:
    if session.get(Secret, SIGNING_KEY) is None:
        session.add(Secret(name=SIGNING_KEY, value=secrets.token_urlsafe(48)))


class TokenSigner:
    """Signs and reads JWTs with the key kept in the database (shared by every process)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._key: str | None = None

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = self._load()
        return self._key

    def _load(self) -> str:
        with self.db.session(write=False) as session:
            found = session.get(Secret, SIGNING_KEY)
        if found is None:
            raise RuntimeError("no signing key: run 'yunguan db upgrade'")
        return found.value

    def sign(
        self,
        *,
        user_id: str,
        username: str,
        token_id: str,
        expires_at: datetime,
        issued_at: datetime,
    ) -> str:
        claims = {
            "sub": user_id,
            "name": username,
            "jti": token_id,
            "iat": issued_at,
            "exp": expires_at,
        }
        return jwt.encode(claims, self.key, algorithm=JWT_ALGORITHM)

    def read(self, token: str, at: datetime) -> dict[str, Any] | None:
        """The claims of a well-signed, unexpired token, else None."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[JWT_ALGORITHM],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["sub", "jti", "exp"],
                },
            )
        except jwt.PyJWTError:
            return None
        if claims["exp"] <= at.timestamp():
            return None
        return claims

    def subject_of(self, scope: Scope) -> dict[str, Any] | None:
        """Claims of the request's bearer token or session cookie, if valid."""
        token = bearer_or_cookie(scope)
        return self.read(token, now()) if token else None


SESSION_COOKIE = "yunguan_session"


def bearer_or_cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials:
                return credentials.strip()
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, cookie = part.strip().partition("=")
                if key == SESSION_COOKIE and cookie:
                    return cookie
    return None
