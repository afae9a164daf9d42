"""A simulated zone, a tenant with a member, and the member's vxnet (named shop/web-net)."""

import pytest

from tests.support import network
from tests.support.api import Api
from tests.support.compute import simulated_zone


@pytest.fixture
def place(admin: Api) -> dict:
    return simulated_zone(admin)


@pytest.fixture
def team(admin: Api, root_id: str) -> dict:
    return admin.tenant(root_id, "Team")


@pytest.fixture
def member(admin: Api, team: dict) -> Api:
    return admin.as_user(team["id"], "dev", ["member"])


@pytest.fixture
def vxnet(member: Api, place: dict) -> dict:
    vpc = network.vpc(member, place["zone"]["id"], "10.1.0.0/16", name="shop")
    return network.vxnet(member, vpc["id"], "10.1.1.0/24", name="web-net")
