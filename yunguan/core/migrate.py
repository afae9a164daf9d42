"""Schema migrations (Alembic), run by ``yunguan db upgrade`` and at ``serve`` start."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from yunguan.core.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; make sure the root tenant and signing key exist."""
    from yunguan.identity.credentials import ensure_signing_key
    from yunguan.identity.service import ensure_root_tenant

    config = alembic_config(db.url)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    with db.session() as session:
        ensure_root_tenant(session)
        ensure_signing_key(session)
