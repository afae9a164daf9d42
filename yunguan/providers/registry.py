"""Driver kinds, and a provider's driver built from its stored config and credentials.

Each kind's module defines ``Config`` and ``Secret`` (the settings and credentials it takes,
validated when a provider is registered) and the driver class.
"""

import atexit
import importlib
import threading
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from yunguan.core import secrets
from yunguan.core.errors import BadRequest
from yunguan.providers.base import Driver
from yunguan.providers.models import Provider

KINDS: dict[str, tuple[str, str]] = {
    "simulator": ("yunguan.providers.simulator.driver", "SimulatorDriver"),
    "libvirt": ("yunguan.providers.libvirt.driver", "LibvirtDriver"),
    "ec2": ("yunguan.providers.ec2.driver", "Ec2Driver"),
    "redfish": ("yunguan.providers.redfish.driver", "RedfishDriver"),
}
# The hypervisor of the hosts each kind reports (the simulator's is configured).
HYPERVISORS = {"libvirt": "kvm", "ec2": "public-cloud", "redfish": "baremetal"}

_drivers: dict[str, tuple[Any, Driver]] = {}
_lock = threading.Lock()


def _module(kind: str) -> Any:
    try:
        return importlib.import_module(KINDS[kind][0])
    except ImportError as exc:  # e.g. libvirt-python missing on this machine
        raise BadRequest(f"the {kind} driver cannot load here: {exc}", code="driver-unavailable")


def validated(kind: str, config: dict[str, Any], secret: dict[str, Any]) -> tuple[dict, dict]:
    """The config and secret as the driver reads them (defaults filled in); 400 if wrong.
    Messages name the field, never a secret's value."""
    module = _module(kind)
    out = []
    for what, model, given in (
        ("config", module.Config, config),
        ("secret", module.Secret, secret),
    ):
        try:
            out.append(_stored(model.model_validate(given)))
        except ValidationError as exc:
            fields = "; ".join(
                f"{what}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise BadRequest(f"invalid {kind} provider {what}: {fields}", code="invalid-field")
    return out[0], out[1]


def supports(kind: str, operation: str) -> bool:
    """Whether drivers of ``kind`` declare ``operation`` (without building one)."""
    declared = getattr(_module(kind), KINDS[kind][1]).capabilities[operation]
    return declared.supported


def _stored(settings: BaseModel) -> dict[str, Any]:
    """As JSON, with secret values in clear (they are sealed before they are stored)."""
    revealed = {k: v.get_secret_value() for k, v in settings if isinstance(v, SecretStr)}
    return {**settings.model_dump(mode="json"), **revealed}


def driver(provider: Provider) -> Driver:
    """The provider's driver, built once per version of its settings and then reused (it
    may hold a connection)."""
    version = (provider.kind, provider.config, provider.secret)
    with _lock:
        held = _drivers.get(provider.id)
        if held is not None and held[0] == version:
            return held[1]
        module = _module(provider.kind)
        built = getattr(module, KINDS[provider.kind][1])(
            module.Config.model_validate(provider.config),
            module.Secret.model_validate(secrets.unseal(provider.secret)),
        )
        if held is not None:
            held[1].close()
        _drivers[provider.id] = (version, built)
        return built


def forget(provider_id: str) -> None:
    with _lock:
        held = _drivers.pop(provider_id, None)
    if held is not None:
        held[1].close()


@atexit.register
def _close_all() -> None:
    """Close connections while their libraries are still loaded."""
    for provider_id in list(_drivers):
        forget(provider_id)
