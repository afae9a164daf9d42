"""Engine, sessions and the declarative base shared by every domain."""

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Numeric, String, create_engine, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 30_000


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use yunguan.core.clock.now()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        Decimal: Numeric(28, 10),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        str: String(255),
    }


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below) so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction that starts deferred can fail to upgrade its lock with
        # SQLITE_BUSY (no waiting); BEGIN IMMEDIATE waits for the lock instead.
        immediate = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        # A pool as large as the request thread pool: reconnecting re-runs the PRAGMAs.
        pool = {} if in_memory else {"pool_size": 40, "max_overflow": 10}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Database:
    """One per process: the engine and the two session factories (read and write)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(write=True), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def new_session(self, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        session = self.new_session(write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


_current: Database | None = None


def set_database(db: Database | None) -> None:
    global _current
    _current = db


def get_database() -> Database:
    """The process's database, for code that runs outside a request (workflows, CLI)."""
    if _current is None:
        raise RuntimeError("database not initialised")
    return _current


def insert_into(session: Session, model: Any) -> Any:
    """An INSERT with the backend's ``ON CONFLICT`` clauses; executed with a list of rows it
    is sent in batches (one statement of them all could pass the backend's parameter limit)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    return insert(model)


def _insert(session: Session, model: Any, rows: list[dict[str, Any]] | dict[str, Any]) -> Any:
    return insert_into(session, model).values(rows)


def chunked(items: Sequence[Any], size: int = 1000) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size``: IN lists a backend takes (SQLite caps parameters)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Any:
    """Write ``rows`` into ``table`` by COPY (PostgreSQL only), in the session's transaction;
    answers the driver's cursor for statements that follow."""
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return cursor


def bulk_insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows at once: by COPY on PostgreSQL (a multi-row INSERT's parameters
    cost more to prepare than the rows cost to write), in batches elsewhere."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert_into(session, model), rows)
        return
    table = model.__table__
    columns = [c for c in table.columns if c.name in rows[0]]
    as_json = {c.name for c in columns if isinstance(c.type, JSON)}
    names = [c.name for c in columns]
    copy_rows(
        session,
        table.name,
        names,
        ([json.dumps(row[n]) if n in as_json else row[n] for n in names] for row in rows),
    )


def insert_missing(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose primary key is not there yet (concurrent callers included);
    no rows, no statement (an empty VALUES would insert one row of defaults)."""
    if rows:
        session.execute(_insert(session, model, rows).on_conflict_do_nothing())


def locked(session: Session, model: Any, ident: str) -> Any:
    """The row ``ident`` of ``model`` (None if absent), locked until the transaction ends and
    read afresh, so whoever holds the lock next sees this one's changes."""
    stmt = select(model).where(model.id == ident).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def upsert(session: Session, model: Any, row: dict[str, Any]) -> None:
    """Insert the row, or update the one with its primary key (concurrent callers included)."""
    statement = _insert(session, model, row)
    keys = [column.name for column in model.__table__.primary_key]
    changes = {name: statement.excluded[name] for name in row if name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


def flush_or_conflict(session: Session, detail: str, code: str) -> None:
    """Flush; a broken unique or foreign key (someone got there first) is a 409 with
    ``detail``, and only this flush is undone."""
    from sqlalchemy.exc import IntegrityError

    from yunguan.core.errors import Conflict

    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(detail, code=code)
