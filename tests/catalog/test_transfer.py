"""The catalog as YAML: export, import into the same and another database, bad input."""

from pathlib import Path

import pytest
import yaml

from tests.catalog.conftest import SPEC, act, make_template, publish
from tests.conftest import new_database_url
from tests.support.api import Api
from yunguan.catalog import transfer
from yunguan.core.db import Database
from yunguan.core.migrate import upgrade
from yunguan.identity.scope import SYSTEM

YAML = {"content-type": "application/yaml"}


@pytest.fixture
def catalog(admin: Api, reviewer: Api, category: dict, root_id: str) -> dict:
    """Two templates (one with an offline, a published and a draft version), two items (one
    shown to a tenant only)."""
    team = admin.tenant(root_id, "team")
    vm = make_template(admin, "vm", description="a virtual machine")
    path = f"/service-templates/{vm['id']}/versions"

    def offer(name: str, version: dict, tenant_ids: list[str]) -> None:
        body = {"name": name, "category_id": category["id"], "tenant_ids": tenant_ids}
        admin.ok(admin.post("/catalog-items", body | {"template_version_id": version["id"]}), 201)

    offer("old-vm", publish(admin, reviewer, vm["id"]), [])
    admin.ok(admin.post(path, {"spec": SPEC | {"image_id": "img-2"}}), 201)
    offer("vm", publish(admin, reviewer, vm["id"], 2), [team["id"]])
    admin.ok(act(admin, vm["id"], 1, "offline"))
    admin.ok(admin.post(path, {}), 201)
    saas = {"webhook_url": "https://x/"}
    make_template(admin, "saas", kind="external", parameters=[], spec=saas)
    return {"team": team["id"], "vm": vm["id"]}


def export(api: Api) -> str:
    answer = api.get("/catalog/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/yaml")
    return answer.text


def test_round_trip_in_the_same_database(admin: Api, catalog: dict) -> None:
    text = export(admin)
    document = yaml.safe_load(text)
    assert [c["name"] for c in document["categories"]] == ["Compute"]
    vm = next(t for t in document["templates"] if t["id"] == catalog["vm"])
    assert [(v["version"], v["state"]) for v in vm["versions"]] == [
        (1, "offline"),
        (2, "published"),
        (3, "draft"),
    ]
    assert {i["name"]: i["tenant_ids"] for i in document["items"]} == {
        "old-vm": [],
        "vm": [catalog["team"]],
    }
    summary = admin.ok(admin.post("/catalog/import", content=text, headers=YAML))
    assert summary == {"categories": 1, "templates": 2, "versions": 4, "items": 2}
    assert export(admin) == text
    plain = admin.post("/catalog/import", content=text, headers={"content-type": "text/plain"})
    assert plain.status_code == 200 and export(admin) == text


def test_round_trip_into_another_database(admin: Api, catalog: dict, tmp_path: Path) -> None:
    document = yaml.safe_load(export(admin))
    for entry in document["items"]:  # the other database has no such tenant
        entry["tenant_ids"] = []
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    other = Database(new_database_url(tmp_path))
    try:
        upgrade(other)
        for _ in range(2):
            with other.session() as session:
                transfer.import_catalog(session, SYSTEM, text.encode())
        with other.session(write=False) as session:
            assert transfer.dump(transfer.export(session, SYSTEM)) == text
    finally:
        other.dispose()


def test_published_versions_must_match(admin: Api, catalog: dict) -> None:
    document = yaml.safe_load(export(admin))
    vm = next(t for t in document["templates"] if t["id"] == catalog["vm"])
    vm["versions"][1]["spec"]["image_id"] = "img-tampered"
    answer = admin.post("/catalog/import", content=yaml.safe_dump(document), headers=YAML)
    assert answer.status_code == 409 and answer.json()["code"] == "import-conflict"
    vm["versions"][1]["spec"]["image_id"] = "img-2"
    vm["versions"][2]["spec"]["image_id"] = "img-3"  # a draft takes the document's content
    admin.ok(admin.post("/catalog/import", content=yaml.safe_dump(document), headers=YAML))
    draft = admin.ok(admin.get(f"/service-templates/{catalog['vm']}/versions/3"))
    assert draft["spec"]["image_id"] == "img-3"


def test_kind_cannot_change_by_import(admin: Api, catalog: dict) -> None:
    document = yaml.safe_load(export(admin))
    document["templates"][0]["kind"] = "external"
    for version in document["templates"][0]["versions"]:
        version["spec"]["webhook_url"] = "https://x/"
    answer = admin.post("/catalog/import", content=yaml.safe_dump(document), headers=YAML)
    assert answer.status_code == 409 and answer.json()["code"] == "import-conflict"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"categories: [", 400, "malformed-yaml"),
        (b"\xff\xfe", 400, "malformed-yaml"),
        (b"a: &x [1]\nb: *x\n", 400, "malformed-yaml"),
        (b"!!python/object/apply:os.system ['true']", 400, "malformed-yaml"),
        (b"[" * 5000, 400, "malformed-yaml"),
        (b"just text", 422, "validation-error"),
        (b"categories: [{id: cat-1}]", 422, "validation-error"),
        (b"templates: [{id: st-1, name: t, kind: instance, versions: []}]\nextra: 1", 422, None),
        (
            b"items: [{id: ci-1, name: x, category_id: cat-none, template_version_id: stv-1}]",
            404,
            None,
        ),
        (
            b"templates: [{id: st-1, name: t, kind: external, versions: "
            b"[{id: stv-1, version: 1, state: draft, spec: {webhook_url: .nan}}]}]",
            422,
            "invalid-spec",
        ),
        (
            b"templates: [{id: st-1, name: t, kind: external, versions: "
            b"[{id: stv-1, version: 1, state: draft, spec: {webhook_url: 2024-01-01}}]}]",
            422,
            "invalid-spec",
        ),
    ],
)
def test_bad_documents_answer_4xx(admin: Api, body: bytes, status: int, code: str | None) -> None:
    answer = admin.post("/catalog/import", content=body, headers=YAML)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if code:
        assert answer.json()["code"] == code


def test_import_media_type_and_permissions(admin: Api, root_id: str) -> None:
    json_body = admin.post("/catalog/import", json={"categories": []})
    assert json_body.status_code == 415 and json_body.json()["code"] == "unsupported-media-type"
    member = admin.as_user(admin.tenant(root_id, "t")["id"], "t-admin", ["tenant-admin"])
    assert member.post("/catalog/import", content=b"{}", headers=YAML).status_code == 403
    assert member.get("/catalog/export").status_code == 403
