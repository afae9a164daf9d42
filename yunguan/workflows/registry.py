"""Every workflow, by operation kind. Importing this registers them with DBOS."""

from yunguan.workflows import (  # noqa: F401
    instances,
    orders,
    periodic,
    providers,
    tenant_delete,
    volumes,
)

WORKFLOWS = {
    tenant_delete.KIND: tenant_delete.delete_tenant,
    **instances.WORKFLOWS,
    **orders.WORKFLOWS,
    **providers.WORKFLOWS,
    **volumes.WORKFLOWS,
}
