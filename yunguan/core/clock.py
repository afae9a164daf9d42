"""The one source of "now". Tests swap it to move time."""

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _now()


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Install a clock (a callable returning an aware UTC datetime); None restores the real one."""
    global _now
    _now = source or (lambda: datetime.now(UTC))
