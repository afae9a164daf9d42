"""Every table of every domain, for Alembic and for ``create_all`` in tests."""


def load_all() -> None:
    import yunguan.billing.models
    import yunguan.catalog.models
    import yunguan.compute.models
    import yunguan.core.audit
    import yunguan.core.idempotency
    import yunguan.identity.models
    import yunguan.inventory.models
    import yunguan.network.models
    import yunguan.notifications.models
    import yunguan.orders.models
    import yunguan.providers.models
    import yunguan.quota.models
    import yunguan.scheduler.models
    import yunguan.workflows.models  # noqa: F401
