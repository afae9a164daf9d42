"""Prefixed, opaque, roughly time-ordered ids: ``t-01hx...``.

48 bits of milliseconds then 80 random bits, in lowercase Crockford base32, so ids sort by
creation time (cursor pagination orders by id) and never collide across processes.
"""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    stamp = int(time.time() * 1000) & ((1 << 48) - 1)
    return f"{prefix}-{_b32(stamp, 10)}{_b32(secrets.randbits(80), 16)}"
