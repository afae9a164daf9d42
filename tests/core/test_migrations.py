from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from yunguan.core.db import Base, Database
from yunguan.models import load_all


def test_migrations_match_the_models(app) -> None:
    """A model change without its migration fails here."""
    load_all()
    db: Database = app.state.db
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
