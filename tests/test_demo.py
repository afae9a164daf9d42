"""``serve --demo`` seeds an organisation, a data centre the scheduler can place into and a
catalog."""

from decimal import Decimal

from sqlalchemy import func, select

from tests.conftest import new_database_url
from yunguan.billing import pricing, wallets
from yunguan.billing.models import BillingAccount, PriceBook
from yunguan.catalog import parameters as params
from yunguan.catalog import service as catalog
from yunguan.catalog.models import TemplateVersion
from yunguan.compute.models import Flavor, Instance
from yunguan.core.config import Settings
from yunguan.core.db import Database
from yunguan.core.migrate import upgrade
from yunguan.core.pagination import PageParams
from yunguan.demo import DEMO_ADMIN, DEMO_REVIEWER, seed
from yunguan.identity.models import Tenant, User
from yunguan.identity.scope import Principal
from yunguan.inventory.models import Host, StoragePool
from yunguan.network.models import Eip, Gateway, Port, Vpc
from yunguan.network.sdn import controller
from yunguan.orders import approvals, plans
from yunguan.scheduler.models import PlacementPolicy


def test_demo_seeds_a_data_centre_once(tmp_path) -> None:
    db = Database(new_database_url(tmp_path))
    settings = Settings(data_dir=tmp_path / "data", password_min_length=8)
    upgrade(db)
    with db.session() as session:
        assert seed(session, settings)
    with db.session() as session:
        assert not seed(session, settings)  # a second start changes nothing
        hosts = session.scalars(select(Host)).all()
        assert len(hosts) == 38 and sum(h.gpus for h in hosts) == 8
        simulated = [h for h in hosts if h.provider_id is not None]
        assert len(simulated) == 8 and all(h.cpu_cores == 32 for h in simulated)
        instances = session.scalars(select(Instance)).all()
        assert [i.state for i in instances] == ["creating", "creating"]  # provisioned at start
        assert {i.vxnet_id for i in instances} == {session.scalars(select(Port.vxnet_id)).first()}
        assert session.scalar(select(func.count()).select_from(PlacementPolicy)) == 1
        pool = session.scalars(select(StoragePool)).one()
        assert pool.source == (tmp_path / "data").resolve().as_uri()
        vpc = session.scalars(select(Vpc)).one()
        assert vpc.routing_mode == "ondemand"  # the zone has gateway hosts
        bound = session.scalars(select(Port).where(Port.host_id.is_not(None))).all()
        eip = session.scalars(select(Eip)).one()
        assert len(bound) == 4 and eip.port_id in {p.id for p in bound}
        gateway = session.scalars(select(Gateway.host_id)).first()
        doc = controller.document(session, gateway)
        assert len(doc["vpcs"][0]["remote_ports"]) == 4  # the gateway holds the whole table
        _assert_catalog(session)
        _assert_billing(session)
    db.dispose()


def _assert_billing(session) -> None:
    """A published list price for every flavor; Acme postpaid, the park prepaid with money."""
    book = session.scalars(select(PriceBook)).one()
    assert (book.name, book.state) == ("list", "published")
    priced = {
        i.price_key for i in pricing.items_of(session, book.id) if i.meter == "instance.running"
    }
    assert priced == set(session.scalars(select(Flavor.id)))
    accounts = {a.mode: a for a in session.scalars(select(BillingAccount))}
    assert set(accounts) == {"postpaid", "prepaid"}
    assert wallets.balances(session, accounts["prepaid"]) == (Decimal(1000), Decimal(200))


def _member(session, username: str) -> Principal:
    user = session.scalars(select(User).where(User.username == username)).one()
    tenant = session.get(Tenant, user.tenant_id)
    return Principal(user.id, user.username, tenant.id, tenant.path, frozenset(user.roles))


def _assert_catalog(session) -> None:
    """Three templates published with four eyes (the VM's second version in review), and
    items for every tenant plus one for the industrial park's subtree only."""
    admin, reviewer = (
        session.scalars(select(User.id).where(User.username == name)).one()
        for name, _ in (DEMO_ADMIN, DEMO_REVIEWER)
    )
    versions = session.scalars(select(TemplateVersion).order_by(TemplateVersion.version)).all()
    assert [(v.version, v.state) for v in versions] == [(1, "published")] * 3 + [(2, "in-review")]
    assert {v.submitted_by for v in versions} == {admin}
    assert [v.reviewed_by for v in versions] == [reviewer] * 3 + [None]
    everyone = {"Linux VM", "Web stack", "Object storage"}
    park = _member(session, "tenant-services-user")
    acme = _member(session, "acme-group-user")
    for member, seen in ((park, everyone | {"Park Linux VM"}), (acme, everyone)):
        items, _ = catalog.list_items(session, member, PageParams(limit=50))
        assert {i.name for i in items} == seen
    categories, _ = catalog.list_categories(session, acme, PageParams(limit=50))
    assert {c.name for c in categories} == {"Compute", "Bundles", "SaaS"}
    stack = next(i for i in items if i.name == "Web stack")
    version = session.get(TemplateVersion, stack.template_version_id)
    values = params.complete(catalog.parameters_of(version), {})
    bundle = plans.plan("bundle", params.render(version.spec, values), "shop")
    plans.check(session, acme, acme.tenant_id, bundle)  # orderable as it comes
    assert [(v.instance, v.size_gb) for v in bundle.volumes] == [("db", 50)]
    assert bundle.network is not None and bundle.eip_entry() == "web"
    vm = next(i for i in items if i.name == "Linux VM")
    flavor = next(p for p in vm.parameters if p["name"] == "flavor")
    assert len(flavor["choices"]) == 3 and flavor["default"] in flavor["choices"]
    assert vm.price_monthly == Decimal(180)
    plan = approvals.plan_for(session, acme.tenant_id, Decimal(1200))
    assert [s["name"] for s in plan] == ["Acme group admin", "Platform"]
    assert approvals.plan_for(session, park.tenant_id, Decimal(1200)) == []
