"""The platform's injectable clock, stopped and moved by hand."""

from datetime import UTC, datetime, timedelta

from yunguan.core import clock


class Clock:
    """Installs itself, stopped at a whole second; tests move ``now`` or ``advance`` it.
    The ``app`` fixture puts the real clock back."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        clock.set_clock(lambda: self.now)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
