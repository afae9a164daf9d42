"""An external (SaaS) offering: its vendor is called, signed, to provision, suspend and
release the service; a vendor that keeps refusing fails the order."""

import json
from collections.abc import Iterator

import pytest

from tests.catalog.conftest import act
from tests.orders.conftest import fulfilled, order
from tests.support.api import Api
from tests.support.waiting import wait_operation
from tests.support.webhooks import Receiver
from yunguan.notifications.signing import verify
from yunguan.orders import vendors

pytestmark = pytest.mark.usefixtures("workflows")


@pytest.fixture
def vendor() -> Iterator[Receiver]:
    """Refuses the first call, then takes every one."""
    endpoint = Receiver([503])
    yield endpoint
    endpoint.close()


def bucket_offer(admin: Api, root_id: str, url: str) -> dict:
    body = {
        "name": "bucket",
        "kind": "external",
        "parameters": [{"name": "bucket", "type": "string", "pattern": "[a-z]{3,20}"}],
        "spec": {"webhook_url": url, "bucket": {"param": "bucket"}},
    }
    template = admin.ok(admin.post("/service-templates", body), 201)
    reviewer = admin.as_user(root_id, "reviewer", ["platform-admin"])
    admin.ok(act(admin, template["id"], 1, "submit"))
    version = reviewer.ok(act(reviewer, template["id"], 1, "approve"))
    category = admin.ok(admin.post("/categories", {"name": "SaaS"}), 201)
    item = {"name": "Bucket", "category_id": category["id"], "template_version_id": version["id"]}
    return admin.ok(admin.post("/catalog-items", item | {"price_monthly": "45"}), 201)


def test_the_vendor_provisions_suspends_and_releases_the_service(
    admin: Api, root_id: str, member: Api, team: dict, vendor: Receiver
) -> None:
    item = bucket_offer(admin, root_id, vendor.url)
    done = fulfilled(member, order(member, item, values={"bucket": "photos"}))
    assert done["state"] == "completed"
    service = member.ok(member.get(f"/service-instances/{done['service_instance_id']}"))
    assert service["state"] == "active" and service["resources"] == []
    provision = [json.loads(r.body) for r in vendor.requests]
    assert [p["event"] for p in provision] == ["service.provision"] * 2  # refused, then taken
    assert provision[-1]["values"] == {"bucket": "photos"}
    assert provision[-1]["tenant_id"] == team["id"]
    assert service["external_ref"] == provision[-1]["id"]
    assert vendor.requests[-1].headers["X-Yunguan-Delivery"] == service["external_ref"]
    for request in vendor.requests:
        headers = request.headers
        signature, timestamp = headers["X-Yunguan-Signature"], headers["X-Yunguan-Timestamp"]
        assert verify(vendors.secret(item["template_id"]), timestamp, request.body, signature)
        assert not verify("another-secret", timestamp, request.body, signature)

    kept = admin.delete(f"/tenants/{team['id']}")  # its service (no instances) holds it
    assert kept.status_code == 409 and "open order(s) or service(s)" in kept.json()["detail"]
    path = f"/service-instances/{service['id']}/actions"
    member.ok(member.post(path, {"action": "stop"}))
    member.ok(member.post(path, {"action": "unsubscribe"}))
    operations = admin.ok(admin.get("/operations", params={"target_id": service["id"]}))
    for operation in operations["items"]:
        assert wait_operation(admin, operation["id"])["state"] == "succeeded"
    events = [json.loads(r.body)["event"] for r in vendor.requests[2:]]
    assert sorted(events) == ["service.release", "service.suspend"]


def test_a_vendor_that_keeps_refusing_fails_the_order(
    admin: Api, root_id: str, member: Api
) -> None:
    refusing = Receiver([500] * 10)
    try:
        item = bucket_offer(admin, root_id, refusing.url)
        placed = order(member, item, values={"bucket": "photos"})
        operation = wait_operation(member, placed["operation_id"], timeout=60)
    finally:
        refusing.close()
    assert operation["state"] == "failed"
    assert "the vendor did not take the order" in operation["error"]
    failed = member.ok(member.get(f"/orders/{placed['id']}"))
    provisions = [
        r for r in refusing.requests if json.loads(r.body)["event"] == "service.provision"
    ]
    assert failed["state"] == "failed" and len(provisions) == 4  # then a release may follow
    service = member.ok(member.get(f"/service-instances/{failed['service_instance_id']}"))
    assert service["state"] == "failed"


def test_an_external_spec_must_name_an_http_endpoint(admin: Api, root_id: str, member: Api) -> None:
    item = bucket_offer(admin, root_id, "ftp://vendor.example/")
    refused = member.post(
        "/orders", {"item_id": item["id"], "name": "b", "values": {"bucket": "abc"}}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid-spec"
