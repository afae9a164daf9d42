"""A simulated zone; a published instance template offered in the catalog at 300.00 a
month; a department with a team, a member who orders, and the people who approve."""

from typing import Any

import pytest

from tests.catalog.conftest import publish
from tests.support.api import Api
from tests.support.clock import Clock
from tests.support.compute import simulated_zone
from tests.support.waiting import wait_operation

PRICE = "300.00"


@pytest.fixture
def place(admin: Api) -> dict:
    return simulated_zone(admin)


@pytest.fixture
def department(admin: Api, root_id: str) -> dict:
    return admin.tenant(root_id, "Engineering")


@pytest.fixture
def team(admin: Api, department: dict) -> dict:
    return admin.tenant(department["id"], "Platform Team")


@pytest.fixture
def member(admin: Api, team: dict) -> Api:
    return admin.as_user(team["id"], "dev", ["member"])


@pytest.fixture
def lead(admin: Api, team: dict) -> Api:
    return admin.as_user(team["id"], "lead", ["approver"])


@pytest.fixture
def head(admin: Api, department: dict) -> Api:
    return admin.as_user(department["id"], "head", ["approver"])


@pytest.fixture
def item(admin: Api, root_id: str, place: dict) -> dict:
    return offer(admin, root_id, place)


def offer(admin: Api, root_id: str, place: dict) -> dict:
    """A catalog item at 300.00 a month whose template asks for a size (the zone's one
    flavor) and a count."""
    sizes = {"name": "size", "type": "choice", "choices": [place["flavor"]["id"]]}
    count = {"name": "count", "type": "integer", "minimum": 1, "maximum": 3, "default": 1}
    spec = {"flavor_id": {"param": "size"}, "image_id": place["image"]["id"]}
    template = {
        "name": "vm",
        "kind": "instance",
        "parameters": [sizes | {"default": place["flavor"]["id"]}, count],
        "spec": spec | {"count": {"param": "count"}},
    }
    return offered(admin, root_id, template, "Linux VM")


def offered(admin: Api, root_id: str, template: dict, name: str) -> dict:
    """The template made (named ``name``), published with a second admin's review, and
    offered as a catalog item of that name at ``PRICE`` a month."""
    made = admin.ok(admin.post("/service-templates", template | {"name": name}), 201)
    if not admin.ok(admin.get("/users", params={"username": "reviewer"}))["items"]:
        admin.user(root_id, "reviewer", ["platform-admin"])
    version = publish(admin, admin.login("reviewer"), made["id"])
    category = admin.ok(admin.post("/categories", {"name": f"{name} category"}), 201)
    item = {
        "name": name,
        "category_id": category["id"],
        "template_version_id": version["id"],
        "price_monthly": PRICE,
    }
    return admin.ok(admin.post("/catalog-items", item), 201)


def order(api: Api, item: dict, status: int = 201, **fields: Any) -> dict:
    body = {"item_id": item["id"], "name": "web", "term_months": 1} | fields
    return api.ok(api.post("/orders", body), status)


def decide(api: Api, order_id: str, action: str, status: int = 200, **fields: Any) -> dict:
    return api.ok(api.post(f"/orders/{order_id}/actions", {"action": action, **fields}), status)


def fulfilled(api: Api, placed: dict) -> dict:
    """The order once its fulfilment has ended."""
    operation = wait_operation(api, placed["operation_id"], timeout=60)
    assert operation["state"] == "succeeded", operation["error"]
    return api.ok(api.get(f"/orders/{placed['id']}"))


@pytest.fixture
def frozen(app) -> Clock:
    return Clock()  # the app fixture restores the real clock
