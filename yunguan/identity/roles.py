"""The built-in roles and what each one may do."""

PLATFORM_ADMIN = "platform-admin"
TENANT_ADMIN = "tenant-admin"
APPROVER = "approver"
MEMBER = "member"
AUDITOR = "auditor"

_READ_IDENTITY = {"tenant:read", "user:read", "group:read", "role:read"}

ROLES: dict[str, dict[str, object]] = {
    PLATFORM_ADMIN: {
        "description": "Operates the whole platform: every tenant, every resource.",
        "permissions": {"*"},
    },
    TENANT_ADMIN: {
        "description": "Manages its tenant's subtree: sub-tenants, users, groups, resources.",
        "permissions": _READ_IDENTITY
        | {"tenant:write", "user:write", "group:write", "audit:read"}
        | {"resource:read", "resource:write"}
        | {"webhook:read", "webhook:write", "billing:read", "billing:pay"},
    },
    # The catalog (catalog:read, catalog:write, catalog:review) is global, so only platform
    # administrators hold it; an approver's scope is its own subtree's orders.
    APPROVER: {
        "description": "Approves or rejects orders in its tenant's subtree.",
        "permissions": _READ_IDENTITY | {"resource:read", "order:approve"},
    },
    MEMBER: {
        "description": "Uses the self-service catalog and manages its tenant's resources.",
        "permissions": _READ_IDENTITY | {"resource:read", "resource:write"},
    },
    AUDITOR: {
        "description": "Reads everything in its tenant's subtree, including the audit log.",
        "permissions": _READ_IDENTITY
        | {"audit:read", "resource:read", "webhook:read", "billing:read"},
    },
}

ROLE_NAMES = tuple(ROLES)


def permissions_of(roles: set[str] | frozenset[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES[role]["permissions"]  # type: ignore[operator]
    return frozenset(granted)
