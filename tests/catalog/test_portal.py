"""The catalog administration pages of the portal: templates through review with four eyes,
categories and items shown to chosen subtrees, the YAML export and import."""

import json
from decimal import Decimal

import yaml

from tests.catalog.conftest import SIZE, SPEC, make_template, publish
from tests.network.test_portal import Portal
from tests.support.api import ADMIN_PASSWORD, PASSWORD, Api
from tests.test_portal_forms import ORIGIN

ADMIN = "/admin/catalog"
PARAMETERS = """\
- name: size
  type: choice
  choices: [small, large]
  default: small
"""


def row_of(page: str, marker: str) -> str:
    return page.split(marker)[1].split("</tr>")[0]


def test_a_template_goes_through_review_with_four_eyes(app, admin: Api, root_id: str) -> None:
    admin.user(root_id, "reviewer", ["platform-admin"])
    author, reviewer = Portal(app, "admin", ADMIN_PASSWORD), Portal(app, "reviewer")
    assert f'href="{ADMIN}/templates"' in author.get("/")

    spec = json.dumps({"flavor_id": {"param": "size"}, "image_id": "img-base"})
    form = {"name": "vm", "kind": "instance", "parameters": PARAMETERS, "spec": spec}
    for fault, status, error in (
        ({"parameters": "- name: [unclosed"}, 400, "parameters is not YAML or JSON"),
        ({"parameters": "- &a {name: x}\n- *a"}, 400, "YAML aliases are not accepted"),
        ({"parameters": "- {name: size, type: colour}"}, 422, "parameters.0.type: Input should"),
        ({"spec": '{"image_id": "img-base"}'}, 422, "required for instance templates"),
        ({"spec": '{"flavor_id": {"param": "cpu"}}'}, 422, "undeclared parameter &#39;cpu&#39;"),
    ):
        refused = author.post(f"{ADMIN}/templates/new", status, **(form | fault))
        assert '<p class="error" role="alert">' in refused and error in refused, fault
    made = author.post(f"{ADMIN}/templates/new", **form)
    assert "Created service template “vm” (version 1, a draft)." in made
    template = admin.ok(admin.get("/service-templates", params={"name": "vm"}))["items"][0]
    assert f'data-template="{template["id"]}"' in made

    detail = f"{ADMIN}/templates/{template['id']}"
    actions = f"{detail}/versions/1/actions"
    draft = row_of(author.get(detail), 'data-version="1"')
    assert 'data-state="draft"' in draft and ">Submit<" in draft and ">Approve<" not in draft
    submitted = author.post(actions, action="submit")
    assert "Version 1 submitted for review." in submitted
    assert ">Approve<" in row_of(submitted, 'data-version="1"')
    own = author.post(actions, 409, action="approve")
    assert "the submitter cannot approve its own version" in own

    unreasoned = reviewer.post(actions, 422, action="reject")
    assert "a rejection needs a comment" in unreasoned
    rejected = reviewer.post(actions, action="reject", comment="name the disk size")
    assert "Version 1 sent back to draft." in rejected
    assert "<q>name the disk size</q>" in row_of(rejected, 'data-version="1"')
    edited = author.post(
        f"{detail}/versions/1",
        parameters=PARAMETERS + "- {name: disk_gb, type: integer}",
        spec=spec,
    )
    assert "Saved version 1." in edited
    author.post(actions, action="submit")
    published = reviewer.post(actions, action="approve", comment="fine")
    assert "Version 1 published." in published
    row = row_of(published, 'data-version="1"')
    assert 'data-state="published"' in row and "admin" in row and "reviewer" in row
    assert ">Offline<" in row and ">Submit<" not in row
    again = reviewer.post(actions, 409, action="approve")
    assert "cannot approve version 1: it is published" in again
    frozen = author.post(f"{detail}/versions/1", 409, parameters="", spec=spec)
    assert "only a draft changes" in frozen

    second = author.post(f"{detail}/versions", parameters=PARAMETERS, spec=spec)
    assert "Created version 2, a draft." in second
    assert 'data-state="draft"' in row_of(second, 'data-version="2"')
    assert "Version 1 taken offline." in author.post(actions, action="offline")
    assert "Version 2 deleted." in author.post(f"{detail}/versions/2/actions", action="delete")
    versions = admin.ok(admin.get(f"/service-templates/{template['id']}/versions"))
    assert [(v["version"], v["state"]) for v in versions] == [(1, "offline"), (2, "deleted")]
    assert [p["name"] for p in versions[0]["parameters"]] == ["size", "disk_gb"]
    audited = admin.ok(admin.get("/audit-events", params={"action": "template-version.action"}))
    codes = [(e["actor_name"], e["status_code"]) for e in reversed(audited["items"])]
    assert codes == [
        ("admin", 200),  # submit
        ("admin", 409),  # four eyes
        ("reviewer", 422),  # a rejection without a comment
        ("reviewer", 200),
        ("admin", 200),
        ("reviewer", 200),  # published
        ("reviewer", 409),  # illegal transition
        ("admin", 200),  # offline
        ("admin", 200),  # delete version 2
    ]
    assert audited["items"][0]["target_id"] == versions[1]["id"]


def test_items_are_shown_to_the_chosen_subtrees(
    app, admin: Api, reviewer: Api, root_id: str
) -> None:
    acme, globex = admin.tenant(root_id, "Acme"), admin.tenant(root_id, "Globex")
    acme_member = admin.as_user(acme["id"], "acme-dev")
    globex_member = admin.as_user(globex["id"], "globex-dev")
    version = publish(admin, reviewer, make_template(admin)["id"])
    portal = Portal(app, "admin", ADMIN_PASSWORD)
    assert "An item needs a category and a published template version first." in portal.get(
        f"{ADMIN}/items"
    )

    made = portal.post(f"{ADMIN}/categories/new", name="Compute", sort_order="2")
    assert "Created category “Compute”." in made and "vm v1" in made
    category = admin.ok(admin.get("/categories"))["items"][0]
    duplicate = portal.post(f"{ADMIN}/categories/new", 409, name="Compute")
    assert "a category named &#39;Compute&#39; exists" in duplicate
    form = {"name": "acme-vm", "category_id": category["id"]}
    made = portal.post(
        f"{ADMIN}/items/new",
        **form,
        template_version_id=version["id"],
        price_monthly="1200.5",
        tenant_ids=[acme["id"]],  # type: ignore[arg-type]
    )
    assert "Created catalog item “acme-vm”." in made
    item = admin.ok(admin.get("/catalog-items", params={"name": "acme-vm"}))["items"][0]
    assert Decimal(item["price_monthly"]) == Decimal("1200.5")
    row = row_of(made, f'data-item="{item["id"]}"')
    assert 'data-visibility="restricted"' in row and "Acme" in row and "Globex" not in row
    assert ">1,200.50<" in row
    assert [i["name"] for i in acme_member.ok(acme_member.get("/catalog-items"))["items"]] == [
        "acme-vm"
    ]
    assert globex_member.ok(globex_member.get("/catalog-items"))["items"] == []
    unknown = portal.post(f"{ADMIN}/items/new", 404, **form, template_version_id="stv-nothing")
    assert "template version stv-nothing not found" in unknown

    page = f"{ADMIN}/items/{item['id']}"
    edit = portal.get(page)
    assert f'<option value="{acme["id"]}" selected>' in edit and 'value="1200.50"' in edit
    saved = portal.post(page, **form | {"name": "vm"}, template_version_id=version["id"])
    assert "Saved “vm”." in saved and f'<option value="{acme["id"]}" selected>' not in saved
    assert [i["name"] for i in globex_member.ok(globex_member.get("/catalog-items"))["items"]] == [
        "vm"
    ]
    busy = portal.post(f"{ADMIN}/categories/{category['id']}/delete", 409)
    assert "still has items" in busy
    assert "Catalog item deleted." in portal.post(f"{ADMIN}/items/{item['id']}/delete")
    assert "Category deleted." in portal.post(f"{ADMIN}/categories/{category['id']}/delete")
    assert admin.ok(admin.get("/catalog-items"))["items"] == []


def test_an_item_keeps_its_offline_version_when_edited(
    app, admin: Api, reviewer: Api, published: dict, category: dict
) -> None:
    body = {"name": "vm", "category_id": category["id"], "template_version_id": published["id"]}
    item = admin.ok(admin.post("/catalog-items", body), 201)
    admin.ok(
        admin.post(
            f"/service-templates/{published['template_id']}/versions/1/actions",
            {"action": "offline"},
        )
    )
    portal = Portal(app, "admin", ADMIN_PASSWORD)
    page = f"{ADMIN}/items/{item['id']}"
    assert f'<option value="{published["id"]}" selected>vm v1 (offline)</option>' in portal.get(
        page
    )
    renamed = portal.post(page, **body | {"name": "old vm"})
    assert "Saved “old vm”." in renamed
    listed = admin.ok(admin.get(f"/catalog-items/{item['id']}"))
    assert (listed["name"], listed["template_version_id"]) == ("old vm", published["id"])


def test_catalog_admin_is_for_platform_administrators(
    app, admin: Api, root_id: str, published: dict
) -> None:
    acme = admin.tenant(root_id, "Acme")
    admin.user(acme["id"], "acme-admin", ["tenant-admin"])
    portal = Portal(app, "acme-admin", PASSWORD)
    assert f'href="{ADMIN}/templates"' not in portal.get("/")
    for path in ("templates", f"templates/{published['template_id']}", "items", "transfer"):
        assert portal.client.get(f"{ADMIN}/{path}").status_code == 403, path
    assert portal.client.get(f"{ADMIN}/export").status_code == 403
    form = {"name": "mine", "kind": "instance", "spec": json.dumps(SPEC)}
    portal.post(f"{ADMIN}/templates/new", 403, **form)
    portal.post(f"{ADMIN}/categories/new", 403, name="Mine")
    portal.post(f"{ADMIN}/import", 403, text="categories: []")
    assert admin.ok(admin.get("/service-templates", params={"name": "mine"}))["items"] == []
    assert admin.ok(admin.get("/categories"))["items"] == []


def test_export_and_import(app, admin: Api, published: dict, category: dict) -> None:
    body = {"name": "vm", "category_id": category["id"], "template_version_id": published["id"]}
    item = admin.ok(admin.post("/catalog-items", body), 201)
    portal = Portal(app, "admin", ADMIN_PASSWORD)
    page = portal.get(f"{ADMIN}/transfer")
    assert 'data-count="templates">1<' in page and 'data-count="items">1<' in page
    assert f'href="{ADMIN}/export"' in page

    download = portal.client.get(f"{ADMIN}/export")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/yaml")
    assert download.headers["content-disposition"] == 'attachment; filename="catalog.yaml"'
    document = yaml.safe_load(download.text)
    assert [(i["id"], i["name"]) for i in document["items"]] == [(item["id"], "vm")]
    assert SIZE.items() <= document["templates"][0]["versions"][0]["parameters"][0].items()

    document["categories"].append({"id": "cat-saas", "name": "SaaS"})
    pasted = portal.post(f"{ADMIN}/import", text=yaml.safe_dump(document))
    notice = "Imported: categories 2, service templates 1 (versions 1), catalog items 1."
    assert notice in pasted and 'data-count="categories">2<' in pasted
    names = {c["name"] for c in admin.ok(admin.get("/categories"))["items"]}
    assert names == {"Compute", "SaaS"}

    document["templates"][0]["versions"][0]["spec"]["image_id"] = "img-other"  # published here
    upload = portal.client.post(
        f"{ADMIN}/import",
        files={"document": ("catalog.yaml", yaml.safe_dump(document), "application/yaml")},
        headers=ORIGIN,
    )
    assert upload.status_code == 409 and "differs from the document" in upload.text
    assert "not a YAML document" in portal.post(f"{ADMIN}/import", 400, text="categories: [")
    assert "choose a YAML file or paste the document" in portal.post(f"{ADMIN}/import", 400)
