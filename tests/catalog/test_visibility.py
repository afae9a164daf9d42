"""Catalog items: who sees which (tenant subtrees, published versions only), and the
categories they are filed under."""

import pytest

from tests.catalog.conftest import act, make_template, publish
from tests.support.api import Api


@pytest.fixture
def tree(admin: Api, root_id: str) -> dict:
    """acme (with dept, with team) and a sibling, globex; a member in team and in globex."""
    acme = admin.tenant(root_id, "acme")
    dept = admin.tenant(acme["id"], "dept")
    team = admin.tenant(dept["id"], "team")
    globex = admin.tenant(root_id, "globex")
    return {
        "acme": acme["id"],
        "dept": dept["id"],
        "team": team["id"],
        "globex": globex["id"],
        "team_member": admin.as_user(team["id"], "t-dev", ["member"]),
        "globex_member": admin.as_user(globex["id"], "g-dev", ["member"]),
        "acme_admin": admin.as_user(acme["id"], "a-admin", ["tenant-admin"]),
    }


def item(admin: Api, category: dict, version: dict, name: str, tenant_ids=()) -> dict:
    body = {"name": name, "category_id": category["id"], "template_version_id": version["id"]}
    return admin.ok(admin.post("/catalog-items", body | {"tenant_ids": list(tenant_ids)}), 201)


def names(api: Api, **params: str) -> set[str]:
    return {i["name"] for i in api.ok(api.get("/catalog-items", params=params))["items"]}


def test_items_are_seen_by_their_subtrees_only(
    admin: Api, tree: dict, category: dict, published: dict
) -> None:
    everyone = item(admin, category, published, "everyone")
    acme_only = item(admin, category, published, "acme-only", [tree["acme"]])
    dept_only = item(admin, category, published, "dept-only", [tree["dept"]])
    item(admin, category, published, "globex-only", [tree["globex"]])
    team, globex = tree["team_member"], tree["globex_member"]

    assert names(team) == {"everyone", "acme-only", "dept-only"}
    assert names(globex) == {"everyone", "globex-only"}
    assert names(tree["acme_admin"]) == {"everyone", "acme-only"}
    assert names(admin) == {"everyone", "acme-only", "dept-only", "globex-only"}

    hidden = globex.get(f"/catalog-items/{acme_only['id']}")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not-found"
    assert globex.get(f"/catalog-items/{dept_only['id']}").status_code == 404
    seen = team.ok(team.get(f"/catalog-items/{dept_only['id']}"))
    assert seen["tenant_ids"] == []  # grants are the platform's business
    assert admin.ok(admin.get(f"/catalog-items/{dept_only['id']}"))["tenant_ids"] == [tree["dept"]]
    assert seen["kind"] == "instance" and seen["version"] == 1
    assert [p["name"] for p in seen["parameters"]] == ["size", "disk_gb"]

    moved = admin.ok(
        admin.patch(f"/catalog-items/{everyone['id']}", {"tenant_ids": [tree["team"]]})
    )
    assert moved["tenant_ids"] == [tree["team"]]
    assert names(globex) == {"globex-only"}
    assert names(team, name="everyone") == {"everyone"}
    assert names(team, category_id="cat-other") == set()


def test_offline_versions_hide_their_items(
    admin: Api, reviewer: Api, tree: dict, category: dict, published: dict
) -> None:
    listed = item(admin, category, published, "vm")
    template_id = published["template_id"]
    admin.ok(act(admin, template_id, 1, "offline"))
    member = tree["team_member"]
    assert names(member) == set()
    assert member.get(f"/catalog-items/{listed['id']}").status_code == 404
    assert names(admin) == {"vm"}
    busy = act(admin, template_id, 1, "delete")
    assert busy.status_code == 409 and busy.json()["code"] == "in-use"

    version = admin.ok(admin.post(f"/service-templates/{template_id}/versions", {}), 201)
    publish(admin, reviewer, template_id, version["version"])
    moved = {"template_version_id": version["id"]}
    admin.ok(admin.patch(f"/catalog-items/{listed['id']}", moved))
    assert names(member) == {"vm"}


def test_items_need_a_published_version(admin: Api, category: dict) -> None:
    draft = admin.ok(admin.get(f"/service-templates/{make_template(admin)['id']}/versions/1"))
    body = {"name": "x", "category_id": category["id"], "template_version_id": draft["id"]}
    answer = admin.post("/catalog-items", body)
    assert answer.status_code == 409 and answer.json()["code"] == "version-not-published"
    missing = admin.post("/catalog-items", body | {"template_version_id": "stv-none"})
    assert missing.status_code == 404
    nowhere = admin.post("/catalog-items", body | {"category_id": "cat-none"})
    assert nowhere.status_code == 404


def test_unknown_tenants_answer_422(admin: Api, category: dict, published: dict) -> None:
    body = {"name": "x", "category_id": category["id"], "template_version_id": published["id"]}
    answer = admin.post("/catalog-items", body | {"tenant_ids": ["t-none"]})
    assert answer.status_code == 422 and answer.json()["code"] == "unknown-tenant"


def test_an_item_whose_tenants_are_gone_is_seen_by_nobody(
    admin: Api, tree: dict, category: dict, published: dict, db
) -> None:
    from sqlalchemy import delete

    from yunguan.catalog.models import CatalogItemTenant

    item(admin, category, published, "lonely", [tree["globex"]])
    with db.session() as session:  # what a deleted tenant's cascade leaves
        session.execute(delete(CatalogItemTenant))
    assert names(tree["team_member"]) == set()


def test_categories(admin: Api, tree: dict, category: dict, published: dict) -> None:
    member = tree["team_member"]
    seen = member.ok(member.get("/categories"))["items"]
    assert [(c["name"], c["sort_order"]) for c in seen] == [("Compute", 1)]
    assert member.post("/categories", {"name": "Mine"}).status_code == 403
    again = admin.post("/categories", {"name": "Compute"})
    assert again.status_code == 409 and again.json()["code"] == "duplicate-name"
    item(admin, category, published, "vm")
    busy = admin.delete(f"/categories/{category['id']}")
    assert busy.status_code == 409 and busy.json()["code"] == "in-use"
    spare = admin.ok(admin.post("/categories", {"name": "Spare"}), 201)
    assert admin.delete(f"/categories/{spare['id']}").status_code == 204
    body = {"name": "x", "category_id": category["id"], "template_version_id": published["id"]}
    assert member.post("/catalog-items", body).status_code == 403
