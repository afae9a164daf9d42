"""Every workflow, by operation kind. Importing this registers them with DBOS."""

from yunguan.workflows import instances, periodic, providers, tenant_delete, volumes  # noqa: F401

WORKFLOWS = {
    tenant_delete.KIND: tenant_delete.delete_tenant,
    **instances.WORKFLOWS,
    **providers.WORKFLOWS,
    **volumes.WORKFLOWS,
}
