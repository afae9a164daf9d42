import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support import network
from tests.support.api import Api
from tests.support.fabric import Fabric, fabric


@pytest.fixture
def kernel_tools() -> None:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ping"):
        pytest.skip("the data plane needs root, nftables and ping (scripts/system-deps.sh)")


@pytest.fixture
def dc(kernel_tools: None, live_admin: Api, live_url: str) -> Iterator[Fabric]:
    """Three hosts (the first an ``sdn-gateway``) registered in a zone, in namespaces."""
    zone = network.sdn_zone(live_admin, hosts=3, gateways=1)
    with fabric(3, live_url) as built:
        built.zone = zone
        built.host_ids = [h["id"] for h in zone["hosts"]]
        yield built
