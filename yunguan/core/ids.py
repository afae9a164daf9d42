"""Prefixed, opaque, roughly time-ordered ids: ``t-01hx...``.

48 bits of milliseconds then 80 random bits, in lowercase Crockford base32, so ids sort by
creation time (cursor pagination orders by id) and never collide across processes.
"""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
"""Every 10-bit value as its two characters: half the steps per id (metering makes one per
usage event, tens of thousands a second)."""


def _b32(value: int, length: int) -> str:
    """``value`` in ``length`` (even) characters, most significant first."""
    pairs = []
    for _ in range(length // 2):
        value, rem = divmod(value, 1024)
        pairs.append(_PAIRS[rem])
    return "".join(reversed(pairs))


def new_id(prefix: str) -> str:
    stamp = int(time.time() * 1000) & ((1 << 48) - 1)
    return f"{prefix}-{_b32(stamp, 10)}{_b32(secrets.randbits(80), 16)}"
