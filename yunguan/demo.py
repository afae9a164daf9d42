"""``yunguan serve --demo``: a small organisation to click through on first start."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yunguan.core.config import Settings
from yunguan.core.ids import new_id
from yunguan.identity import credentials
from yunguan.identity.models import Tenant, User
from yunguan.identity.service import bootstrap_user, ensure_root_tenant

DEMO_ADMIN = ("admin", "Yunguan-Demo-2026")
DEMO_PASSWORD = "Demo-Passw0rd!"

# name -> children; every tenant gets a tenant-admin and a member.
TREE = {
    "Acme Group": {"Engineering": {"Platform Team": {}, "Data Team": {}}, "Finance": {}},
    "Industrial Park Authority": {"Tenant Services": {}},
}


def seed(session: Session, settings: Settings) -> bool:
    """Create the demo organisation unless the database already has users."""
    if session.scalar(select(func.count()).select_from(User)):
        return False
    root = ensure_root_tenant(session)
    bootstrap_user(session, *DEMO_ADMIN, ["platform-admin"], settings)
    password_hash = credentials.hash_password(DEMO_PASSWORD)

    def plant(parent: Tenant, children: dict) -> None:
        for name, grandchildren in children.items():
            tenant_id = new_id("t")
            tenant = Tenant(
                id=tenant_id, name=name, parent_id=parent.id, path=f"{parent.path}{tenant_id}/"
            )
            session.add(tenant)
            slug = name.lower().replace(" ", "-")
            for suffix, roles in (("admin", ["tenant-admin"]), ("user", ["member"])):
                session.add(
                    User(
                        id=new_id("u"),
                        username=f"{slug}-{suffix}",
                        tenant_id=tenant_id,
                        password_hash=password_hash,
                        roles=roles,
                    )
                )
            plant(tenant, grandchildren)

    plant(root, TREE)
    return True
