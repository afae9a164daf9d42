"""Credentials encrypted at rest with Fernet (AES-128-CBC and HMAC-SHA256).

The key is ``YUNGUAN_SECRET_KEY`` or, when unset, a key made once in the data directory
(mode 0600). Losing the key loses the stored credentials, never anything else.
"""

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from yunguan.core.config import Settings, get_settings


def _key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Use the key of these settings (the app's) rather than the environment's."""
    global _settings
    _settings = settings


@lru_cache
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def cipher() -> Fernet:
    settings = _settings or get_settings()
    if settings.secret_key:
        return _fernet(settings.secret_key.encode())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return _fernet(_key_file(settings.data_dir / "secret.key"))


def seal(values: dict[str, Any]) -> str:
    return cipher().encrypt(json.dumps(values).encode()).decode()


def unseal(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(cipher().decrypt(token.encode()))
    except InvalidToken:
        raise RuntimeError("stored credentials cannot be decrypted: is YUNGUAN_SECRET_KEY right?")
