"""Downgrades with data in the tables they reshape (a fresh database each)."""

from datetime import UTC, datetime
from decimal import Decimal

from alembic import command
from sqlalchemy import inspect, select, text

from tests.conftest import new_database_url
from yunguan.billing.models import BillingAccount, Invoice, InvoiceLine, Payment
from yunguan.core.db import Database
from yunguan.core.migrate import alembic_config, upgrade
from yunguan.identity.models import Tenant
from yunguan.models import load_all

AT = datetime(2027, 4, 1, tzinfo=UTC)


def _migrate(db: Database, step, revision: str) -> None:
    config = alembic_config(db.url)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        step(config, revision)


def _count(db: Database, table: str) -> int:
    with db.engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_billing_downgrades_below_0012_and_0011_with_rows_present(tmp_path) -> None:
    """0012 drops columns of ``invoices`` and ``billing_accounts`` while lines and payments
    refer to their rows: nothing referring to them is lost or in the way."""
    load_all()
    db = Database(new_database_url(tmp_path))
    try:
        upgrade(db)
        with db.session() as session:
            root = session.scalars(select(Tenant).where(Tenant.parent_id.is_(None))).one()
            session.add(BillingAccount(id="ba-1", tenant_id=root.id, tenant_path=root.path))
            session.flush()
            invoice = Invoice(id="inv-1", account_id="ba-1", tenant_id=root.id)
            invoice.tenant_path, invoice.period, invoice.currency = root.path, "2027-03", "CNY"
            invoice.period_start = invoice.period_end = invoice.finalize_after = AT
            session.add(invoice)
            session.flush()
            session.add(
                InvoiceLine(
                    id="il-1", invoice_id="inv-1", line_no=1, tenant_id=root.id, amount=Decimal(1)
                )
            )
            session.add(
                Payment(
                    id="pay-1",
                    account_id="ba-1",
                    tenant_path=root.path,
                    kind="top-up",
                    amount=Decimal(5),
                    currency="CNY",
                    method="",
                    reference="r-1",
                    created_at=AT,
                )
            )

        _migrate(db, command.downgrade, "0011")
        assert [_count(db, t) for t in ("billing_accounts", "invoices", "invoice_lines")] == [1] * 3
        columns = inspect(db.engine).get_columns
        assert "amount_due" not in {c["name"] for c in columns("invoices")}
        assert "state" not in {c["name"] for c in columns("billing_accounts")}

        _migrate(db, command.downgrade, "0010")
        assert "billing_accounts" not in inspect(db.engine).get_table_names()

        _migrate(db, command.upgrade, "head")
        assert _count(db, "billing_accounts") == 0
    finally:
        db.dispose()
