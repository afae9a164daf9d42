"""Billing periods: calendar months of the account's time zone, half-open, kept in UTC."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def zone(name: str) -> ZoneInfo:
    """The time zone ``name``; ValueError if the system does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}")


def period_of(moment: datetime, tz: str) -> str:
    """The month (``YYYY-MM``) that ``moment`` falls in, seen from ``tz``."""
    local = moment.astimezone(zone(tz))
    return f"{local.year:04d}-{local.month:02d}"


def bounds(period: str, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of the month in ``tz``, as UTC instants."""
    match = PERIOD.match(period)
    if match is None:
        raise ValueError(f"{period!r} is not a month (YYYY-MM)")
    year, month = int(match[1]), int(match[2])
    after = (year + 1, 1) if month == 12 else (year, month + 1)
    local = zone(tz)
    start = datetime(year, month, 1, tzinfo=local)
    end = datetime(*after, 1, tzinfo=local)
    return start.astimezone(UTC), end.astimezone(UTC)


def midnights(period: str, tz: str) -> list[int]:
    """The local midnights that end the month's days, as epoch seconds. A stretch
    ``[a, b)`` is billed the days whose end falls in ``(a, b]``: the day it starts (or
    changes plan) on, not the day it ends on, so the stretches of one subscription never
    bill a day twice."""
    start, end = bounds(period, tz)
    local = zone(tz)
    day, last = start.astimezone(local).date(), end.astimezone(local).date()
    found = []
    while day < last:
        day += timedelta(days=1)
        found.append(int(datetime(day.year, day.month, day.day, tzinfo=local).timestamp()))
    return found


def _index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:]) - 1


def _period(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def next_period(period: str) -> str:
    return _period(_index(period) + 1)


def previous_period(period: str) -> str:
    return _period(_index(period) - 1)


def months(last: str, count: int) -> list[str]:
    """The ``count`` months (``YYYY-MM``) up to ``last``, oldest first."""
    end = _index(last)
    return [_period(m) for m in range(end - count + 1, end + 1)]


def span(first: str, last: str) -> int:
    """How many months from ``first`` to ``last``, both counted (none if backwards)."""
    return _index(last) - _index(first) + 1


def months_between(first: str, last: str) -> list[str]:
    return months(last, span(first, last))


def seconds(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds())
