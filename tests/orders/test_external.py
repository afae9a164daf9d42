"""An external (SaaS) offering: its vendor is called, signed, to provision, suspend and
release the service; a vendor that keeps refusing fails the order."""

import json
from collections.abc import Iterator

import pytest

from tests.orders.conftest import fulfilled, offered, order
from tests.orders.test_subscriptions import tick
from tests.support.api import Api
from tests.support.waiting import wait_operation
from tests.support.webhooks import Receiver
from yunguan.notifications.signing import verify
from yunguan.orders import vendors

pytestmark = pytest.mark.usefixtures("workflows")


@pytest.fixture
def vendor() -> Iterator[Receiver]:
    """Refuses the first call (a provision) and twice the fourth (a release), takes the
    others."""
    endpoint = Receiver([503, 200, 200, 503, 503])
    yield endpoint
    endpoint.close()


def bucket_offer(admin: Api, root_id: str, url: str) -> dict:
    body = {
        "kind": "external",
        "parameters": [{"name": "bucket", "type": "string", "pattern": "[a-z]{3,20}"}],
        "spec": {"webhook_url": url, "bucket": {"param": "bucket"}},
    }
    return offered(admin, root_id, body, "Bucket")


def latest_call(admin: Api, service_id: str) -> str:
    """The id of the last vendor call made for the service."""
    return admin.ok(admin.get("/operations", params={"target_id": service_id}))["items"][0]["id"]


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
    assert wait_operation(admin, latest_call(admin, service["id"]))["state"] == "succeeded"
    member.ok(member.post(path, {"action": "unsubscribe"}))
    release = latest_call(admin, service["id"])
    tick()  # the vendor has not taken the release yet: the service waits for it
    assert member.ok(member.get(f"/service-instances/{service['id']}"))["state"] == "releasing"
    assert wait_operation(admin, release)["state"] == "succeeded"
    tick()
    assert member.ok(member.get(f"/service-instances/{service['id']}"))["state"] == "released"
    events = [json.loads(r.body)["event"] for r in vendor.requests[2:]]
    assert events == ["service.suspend"] + ["service.release"] * 3  # refused twice, then taken


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
