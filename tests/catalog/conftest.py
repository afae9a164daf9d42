"""A second platform administrator (the reviewer: four eyes) and builders for templates
and published versions."""

from typing import Any

import pytest

from tests.support.api import Api

SIZE = {"name": "size", "type": "choice", "choices": ["small", "large"], "default": "small"}
DISK = {"name": "disk_gb", "type": "integer", "minimum": 10, "maximum": 500, "default": 20}
SPEC = {"flavor_id": {"param": "size"}, "image_id": "img-base", "disk_gb": {"param": "disk_gb"}}


@pytest.fixture
def reviewer(admin: Api, root_id: str) -> Api:
    return admin.as_user(root_id, "reviewer", ["platform-admin"])


def make_template(admin: Api, name: str = "vm", **fields: Any) -> dict:
    body = {"name": name, "kind": "instance", "parameters": [SIZE, DISK], "spec": SPEC} | fields
    return admin.ok(admin.post("/service-templates", body), 201)


def act(api: Api, template_id: str, version: int, action: str, comment: str = ""):
    body = {"action": action, "comment": comment}
    return api.post(f"/service-templates/{template_id}/versions/{version}/actions", json=body)


def publish(admin: Api, reviewer: Api, template_id: str, version: int = 1) -> dict:
    admin.ok(act(admin, template_id, version, "submit"))
    return reviewer.ok(act(reviewer, template_id, version, "approve", "looks right"))


@pytest.fixture
def published(admin: Api, reviewer: Api) -> dict:
    """A template whose version 1 is published."""
    return publish(admin, reviewer, make_template(admin)["id"])


@pytest.fixture
def category(admin: Api) -> dict:
    return admin.ok(admin.post("/categories", {"name": "Compute", "sort_order": 1}), 201)
