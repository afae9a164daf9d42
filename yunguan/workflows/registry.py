"""Every workflow, by operation kind. Importing this registers them with DBOS."""

from yunguan.workflows import tenant_delete

WORKFLOWS = {tenant_delete.KIND: tenant_delete.delete_tenant}
