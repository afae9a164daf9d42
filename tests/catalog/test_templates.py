"""Service templates through the API: versions, the review lifecycle, immutability."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.catalog.conftest import DISK, SIZE, SPEC, act, make_template, publish
from tests.support.api import Api
from yunguan.core import clock


def test_lifecycle_with_four_eyes(admin: Api, reviewer: Api) -> None:
    template = make_template(admin)
    versions = admin.ok(admin.get(f"/service-templates/{template['id']}/versions"))
    assert [(v["version"], v["state"]) for v in versions] == [(1, "draft")]
    assert versions[0]["id"].startswith("stv-") and template["id"].startswith("st-")

    submitted = admin.ok(act(admin, template["id"], 1, "submit"))
    assert submitted["state"] == "in-review"
    assert submitted["submitted_by"] == admin.me["id"]

    own = act(admin, template["id"], 1, "approve")
    assert own.status_code == 409 and own.json()["code"] == "four-eyes"

    rejected = reviewer.ok(act(reviewer, template["id"], 1, "reject", "disk too small"))
    assert (rejected["state"], rejected["review_comment"]) == ("draft", "disk too small")
    admin.ok(act(admin, template["id"], 1, "submit"))
    reviewed_at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    clock.set_clock(lambda: reviewed_at)
    approved = reviewer.ok(act(reviewer, template["id"], 1, "approve"))
    assert approved["state"] == "published" and approved["reviewed_by"] == reviewer.me["id"]
    assert datetime.fromisoformat(approved["reviewed_at"]) == reviewed_at

    offline = admin.ok(act(admin, template["id"], 1, "offline"))
    assert offline["state"] == "offline"
    deleted = admin.ok(act(admin, template["id"], 1, "delete"))
    assert deleted["state"] == "deleted"


def test_published_versions_are_immutable(admin: Api, reviewer: Api) -> None:
    template = make_template(admin)
    publish(admin, reviewer, template["id"])
    path = f"/service-templates/{template['id']}/versions"
    change = admin.patch(f"{path}/1", {"spec": SPEC | {"image_id": "img-other"}})
    assert change.status_code == 409
    assert change.headers["content-type"] == "application/problem+json"
    assert change.json()["code"] == "immutable-version"

    second = admin.ok(admin.post(path, {"spec": SPEC | {"image_id": "img-other"}}), 201)
    assert (second["version"], second["state"]) == (2, "draft")
    assert second["parameters"] == admin.ok(admin.get(f"{path}/1"))["parameters"]
    changed = admin.ok(admin.patch(f"{path}/2", {"parameters": [SIZE, DISK | {"maximum": 900}]}))
    assert changed["spec"]["image_id"] == "img-other"
    assert changed["parameters"][1]["maximum"] == 900
    assert admin.ok(admin.get(f"{path}/1"))["spec"] == SPEC
    copied = admin.ok(admin.post(path, {}), 201)
    assert (copied["version"], copied["spec"]) == (3, changed["spec"])


@pytest.mark.parametrize(
    ("steps", "action"),
    [
        ([], "approve"),
        ([], "reject"),
        ([], "offline"),
        (["submit"], "submit"),
        (["submit"], "delete"),
        (["submit", "approve"], "delete"),
        (["submit", "approve"], "submit"),
        (["submit", "approve", "offline"], "approve"),
        (["delete"], "submit"),
    ],
)
def test_illegal_transitions_answer_409(
    admin: Api, reviewer: Api, steps: list[str], action: str
) -> None:
    template = make_template(admin)
    for step in steps:
        actor = reviewer if step == "approve" else admin
        actor.ok(act(actor, template["id"], 1, step))
    answer = act(reviewer, template["id"], 1, action, "because")
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "illegal-transition"


def test_spec_references_and_kind_keys_are_checked(admin: Api) -> None:
    undeclared = admin.post(
        "/service-templates",
        {"name": "x", "kind": "instance", "spec": SPEC | {"nics": [{"param": "vlan"}]}},
    )
    assert undeclared.status_code == 422 and undeclared.json()["code"] == "invalid-spec"
    assert "vlan" in undeclared.text
    missing = admin.post("/service-templates", {"name": "x", "kind": "instance", "spec": {}})
    fields = {tuple(e["loc"]) for e in missing.json()["errors"]}
    assert fields == {("spec", "flavor_id"), ("spec", "image_id")}
    external = {"name": "saas", "kind": "external", "spec": {"webhook_url": "https://x.test/"}}
    assert admin.post("/service-templates", external).status_code == 201
    bundle = {"name": "b", "kind": "bundle", "spec": {"instances": "two"}}
    assert admin.post("/service-templates", bundle).status_code == 422
    bundle["spec"] = {"instances": [{"flavor_id": "flv-a"}]}
    assert admin.post("/service-templates", bundle).status_code == 201
    template = make_template(admin)
    path = f"/service-templates/{template['id']}/versions"
    dropped = admin.post(path, {"parameters": [SIZE]})  # the spec still refers to disk_gb
    assert dropped.status_code == 422 and "disk_gb" in dropped.text


def test_names_are_unique_and_kind_fixed(admin: Api) -> None:
    template = make_template(admin)
    again = admin.post(
        "/service-templates", {"name": "vm", "kind": "bundle", "spec": {"instances": []}}
    )
    assert again.status_code == 409 and again.json()["code"] == "duplicate-name"
    kind = admin.patch(f"/service-templates/{template['id']}", {"kind": "bundle"})
    assert kind.status_code == 422
    renamed = admin.ok(admin.patch(f"/service-templates/{template['id']}", {"name": "vm2"}))
    assert renamed["name"] == "vm2"
    listed = admin.ok(admin.get("/service-templates", params={"kind": "instance"}))
    assert [t["id"] for t in listed["items"]] == [template["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "reject"},
        {"action": "publish"},
        {"action": "approve", "extra": 1},
        {"action": "submit", "comment": "x" * 1025},
        {},
    ],
)
def test_bad_actions_answer_422(admin: Api, body: dict) -> None:
    template = make_template(admin)
    answer = admin.post(f"/service-templates/{template['id']}/versions/1/actions", json=body)
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    "parameters",
    [
        [SIZE, SIZE],
        [{"name": "Bad Name", "type": "string"}],
        [{"name": "n", "type": "integer", "minimum": 5, "maximum": 1}],
        [{"name": "n", "type": "integer", "default": 0, "minimum": 1}],
        [{"name": "n", "type": "choice"}],
        [{"name": "n", "type": "choice", "choices": []}],
        [{"name": "n", "type": "string", "pattern": "("}],
        [{"name": "n", "type": "choice", "choices": ["a"], "choice_labels": {"b": "Bee"}}],
        [{"name": "n", "type": "string", "choice_labels": {"a": "A"}}],
        [{"name": "n", "type": "string", "minimum": 1}],
        [{"name": "n", "type": "boolean", "default": "yes"}],
        [{"name": "n", "type": "date"}],
    ],
)
def test_bad_parameters_answer_422(admin: Api, parameters: list) -> None:
    body = {"name": "p", "kind": "external", "parameters": parameters}
    body["spec"] = {"webhook_url": "https://x.test/"}
    answer = admin.post("/service-templates", body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_missing_things_answer_404(admin: Api) -> None:
    assert admin.get("/service-templates/st-none").status_code == 404
    template = make_template(admin)
    assert admin.get(f"/service-templates/{template['id']}/versions/9").status_code == 404
    assert admin.post("/service-templates/st-none/versions", {}).status_code == 404
    assert act(admin, template["id"], 9, "submit").status_code == 404
    assert admin.get(f"/service-templates/{template['id']}/versions/0").status_code == 422


def test_tenants_cannot_read_or_write_templates(admin: Api, root_id: str) -> None:
    team = admin.tenant(root_id, "Team")
    member = admin.as_user(team["id"], "dev", ["tenant-admin", "approver"])
    template = make_template(admin)
    assert member.get("/service-templates").status_code == 403
    assert member.get(f"/service-templates/{template['id']}").status_code == 403
    assert member.post("/service-templates", {"name": "t", "kind": "bundle"}).status_code == 403
    admin.ok(act(admin, template["id"], 1, "submit"))
    assert act(member, template["id"], 1, "approve").status_code == 403
