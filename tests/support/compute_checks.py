"""What an instance holds, looked up everywhere it could leak: quota reservations,
placement claims, ports and addresses, and the provider's machines."""

from typing import Any

from sqlalchemy import func, select

from tests.support.api import Api
from yunguan.core.db import Database
from yunguan.providers.models import SimulatedMachine


def held(admin: Api, db: Database, tenant_id: str) -> dict[str, Any]:
    reservations = admin.ok(admin.get("/quotas/reservations", params={"tenant_id": tenant_id}))
    claims = admin.ok(admin.get("/placement/claims", params={"tenant_id": tenant_id}))
    ports = admin.ok(admin.get("/ports", params={"tenant_id": tenant_id}))
    with db.session(write=False) as session:
        machines = session.scalar(select(func.count()).select_from(SimulatedMachine))
    return {
        "reservations": len(instance_reservations(reservations["items"])),
        "claims": len(claims["items"]),
        "ports": len(ports["items"]),
        "machines": machines,
    }


def instance_reservations(rows: list[dict]) -> list[dict]:
    """Those of instances (VPCs and vxnets hold quota too)."""
    return [r for r in rows if (r["consumer_id"] or "").startswith("i-")]


NOTHING = {"reservations": 0, "claims": 0, "ports": 0, "machines": 0}
