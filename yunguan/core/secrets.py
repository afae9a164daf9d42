"""Credentials encrypted at rest with Fernet (AES-128-CBC and HMAC-SHA256).

The key is ``YUNGUAN_SECRET_KEY`` or, when unset, a key made once in the data directory
(mode 0600). Losing the key loses the stored credentials, never anything else.
"""

import hashlib
import hmac
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from yunguan.core.config import Settings, get_settings
from yunguan.core.errors import Conflict


def _key_file(path: Path) -> bytes:
    """The key in ``path``, made first if absent. Written to a temporary file and linked
    into place, so a process starting at the same moment never reads a half-written key."""
    if not path.exists():
        key = Fernet.generate_key()
        fd, temporary = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the key
        finally:
            os.unlink(temporary)
    return path.read_bytes().strip()


_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Use the key of these settings (the app's) rather than the environment's."""
    global _settings
    _settings = settings


@lru_cache
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def _key() -> bytes:
    settings = _settings or get_settings()
    if settings.secret_key:
        return settings.secret_key.encode()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return _key_file(settings.data_dir / "secret.key")


def cipher() -> Fernet:
    return _fernet(_key())


def derived(purpose: str) -> str:
    """A secret for one ``purpose``, derived from the platform key (the same in every
    process of the platform; another purpose gets an unrelated one)."""
    return hmac.new(_key(), purpose.encode(), hashlib.sha256).hexdigest()


def seal(values: dict[str, Any]) -> str:
    return cipher().encrypt(json.dumps(values).encode()).decode()


def unseal(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(cipher().decrypt(token.encode()))
    except InvalidToken:
        raise Conflict(
            "the stored credentials cannot be decrypted (is YUNGUAN_SECRET_KEY the key they "
            "were stored with?); give them again",
            code="undecryptable",
        )
