"""Named fault points for crash and latency tests (``YUNGUAN_FAULT_POINTS``).

``YUNGUAN_FAULT_POINTS="tenant-delete.after-revoke=crash"`` makes the process die at that
point exactly as a power cut would; ``name=error`` raises :class:`InjectedFault` there;
``name=sleep:2`` delays it. Unset, a point costs a dict lookup.
"""

import os
import time

import structlog

from yunguan.core.config import get_settings

log = structlog.get_logger("yunguan.faults")


class InjectedFault(RuntimeError):
    pass


def _configured() -> dict[str, str]:
    spec = get_settings().fault_points
    pairs = (item.partition("=") for item in spec.split(",") if item.strip())
    return {name.strip(): action.strip() for name, _, action in pairs}


def fault_point(name: str) -> None:
    action = _configured().get(name)
    if action is None:
        return
    log.warning("fault injected", point=name, action=action)
    if action == "crash":
        os._exit(70)
    if action == "error":
        raise InjectedFault(f"fault injected at {name}")
    if action.startswith("sleep:"):
        time.sleep(float(action.removeprefix("sleep:")))
