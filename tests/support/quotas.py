"""Quota helpers for tests: configure limits and reserve through the API."""

from typing import Any

from tests.support.api import Api


def limit(admin: Api, tenant_id: str, resource: str = "vcpus", **fields: Any) -> Any:
    return admin.patch(f"/quotas/{tenant_id}", {"resource": resource, **fields})


def set_limit(admin: Api, tenant_id: str, resource: str = "vcpus", **fields: Any) -> dict:
    return admin.ok(limit(admin, tenant_id, resource, **fields))


def reserve(admin: Api, tenant_id: str, vcpus: int, **fields: Any) -> Any:
    body = {"tenant_id": tenant_id, "amounts": {"vcpus": vcpus}, **fields}
    return admin.post("/quotas/reservations", body)


def node(admin: Api, tenant_id: str, resource: str = "vcpus") -> dict:
    rows = admin.ok(admin.get(f"/quotas/{tenant_id}"))
    return next(r for r in rows if r["resource"] == resource)
