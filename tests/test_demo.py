"""``serve --demo`` seeds an organisation and a data centre the scheduler can place into."""

from sqlalchemy import func, select

from tests.conftest import new_database_url
from yunguan.compute.models import Instance
from yunguan.core.config import Settings
from yunguan.core.db import Database
from yunguan.core.migrate import upgrade
from yunguan.demo import seed
from yunguan.inventory.models import Host, StoragePool
from yunguan.network.models import Eip, Gateway, Port, Vpc
from yunguan.network.sdn import controller
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
    db.dispose()
