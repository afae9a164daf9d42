"""REST conventions: problem+json, bad input, idempotency, request ids, health, metrics."""

import pytest

from tests.support.api import Api

INJECTIONS = [
    "'; DROP TABLE tenants; --",
    "<script>alert(1)</script>",
    '" OR 1=1 --',
    "{{7*7}}",
    "../../etc/passwd",
]


def test_openapi_is_served(client) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "Yunguan"
    assert "/api/v1/tenants" in spec["paths"]


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_metrics_count_requests(admin: Api, client) -> None:
    admin.get("/me")
    text = client.get("/metrics").text
    assert 'yunguan_http_requests_total{method="GET",route="/api/v1/me",status="200"}' in text


def test_request_ids_are_returned_and_honoured(client) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id\t"})
    assert unsafe.headers["x-request-id"] != "bad id\t"


def test_errors_are_problem_json(admin: Api) -> None:
    answer = admin.get("/tenants/t-doesnotexist")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"].endswith("/not-found") and body["status"] == 404
    assert body["code"] == "not-found" and body["instance"] == "/api/v1/tenants/t-doesnotexist"


def test_unauthenticated_calls_get_401(client) -> None:
    answer = client.get("/api/v1/tenants")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    forged = client.get("/api/v1/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401 and forged.json()["code"] == "invalid-token"


def test_malformed_json(admin: Api) -> None:
    answer = admin.call(
        "POST", "/tenants", content=b'{"name": "x", ', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "malformed-json"


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5, "parent_id": "t-x"},
        {"name": "ok", "parent_id": "t-x", "unknown": 1},
        {"name": "", "parent_id": "t-x"},
        {"name": "x" * 65, "parent_id": "t-x"},
        {"name": "nul\u0000byte", "parent_id": "t-x"},
        {"name": "two\nlines", "parent_id": "t-x"},
        {"parent_id": "t-x"},
        [],
        "just a string",
    ],
)
def test_invalid_bodies_get_422(admin: Api, body) -> None:
    answer = admin.post("/tenants", body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation-error"


def test_oversized_body_is_refused(admin: Api, root_id: str) -> None:
    huge = {"name": "big", "parent_id": root_id, "description": "x" * (1024 * 1024 + 10)}
    answer = admin.post("/tenants", huge)
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload-too-large"
    assert admin.ok(admin.get("/tenants", params={"name": "big"}))["items"] == []


def test_streamed_oversized_body_is_refused(admin: Api) -> None:
    def chunks():
        for _ in range(20):
            yield b"x" * 65536

    answer = admin.call(
        "POST", "/tenants", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


def test_control_characters_in_urls_are_refused(admin: Api) -> None:
    assert admin.get("/tenants/t-%00x").status_code == 400
    assert admin.get("/tenants", params={"name": "a\x00b"}).status_code == 400


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_stored_as_plain_data(admin: Api, root_id: str, text: str) -> None:
    created = admin.tenant(root_id, text)
    assert created["name"] == text
    found = admin.ok(admin.get("/tenants", params={"name": text}))["items"]
    assert [t["id"] for t in found] == [created["id"]]
    assert admin.ok(admin.get("/tenants", params={"parent_id": root_id}))["items"]


def test_idempotent_retry_creates_one_object(admin: Api, root_id: str) -> None:
    body = {"name": "once", "parent_id": root_id}
    first = admin.post("/tenants", body, headers={"Idempotency-Key": "key-1"})
    second = admin.post("/tenants", body, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(admin.ok(admin.get("/tenants", params={"name": "once"}))["items"]) == 1


def test_idempotency_key_bound_to_its_request(admin: Api, root_id: str) -> None:
    admin.post("/tenants", {"name": "a", "parent_id": root_id}, headers={"Idempotency-Key": "k"})
    other = admin.post(
        "/tenants", {"name": "b", "parent_id": root_id}, headers={"Idempotency-Key": "k"}
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency-key-reused"


def test_idempotency_keys_are_per_caller(admin: Api, root_id: str) -> None:
    other_admin = admin.as_user(root_id, "second-admin", ["tenant-admin"])
    body = {"name": "mine", "parent_id": root_id}
    admin.post("/tenants", body, headers={"Idempotency-Key": "shared"})
    theirs = other_admin.post("/tenants", body, headers={"Idempotency-Key": "shared"})
    assert theirs.status_code == 409  # ran for real (and hit the duplicate name)
    assert "idempotent-replayed" not in theirs.headers


def test_failed_request_is_replayed_too(admin: Api) -> None:
    body = {"name": "x", "parent_id": "t-missing"}
    first = admin.post("/tenants", body, headers={"Idempotency-Key": "k404"})
    again = admin.post("/tenants", body, headers={"Idempotency-Key": "k404"})
    assert first.status_code == again.status_code == 404


def test_bad_idempotency_key(admin: Api, root_id: str) -> None:
    answer = admin.post(
        "/tenants", {"name": "x", "parent_id": root_id}, headers={"Idempotency-Key": "k" * 300}
    )
    assert answer.status_code == 400


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 100000}, {"limit": "many"}])
def test_bad_page_sizes(admin: Api, params) -> None:
    assert admin.get("/tenants", params=params).status_code == 422


def test_naive_time_filters_are_refused(admin: Api) -> None:
    assert admin.get("/audit-events", params={"since": "2026-01-01T00:00:00"}).status_code == 422
    assert admin.get("/audit-events", params={"since": "2026-01-01T00:00:00Z"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/users",
            {
                "username": "nul",
                "password": "Member-Passw0rd!",
                "tenant_id": "t-x",
                "display_name": "a\u0000b",
            },
        ),
        ("/auth/token", {"username": "a\u0000b", "password": "whatever-password"}),
    ],
)
def test_nul_bytes_in_any_field_are_refused(admin: Api, path: str, body: dict) -> None:
    assert admin.post(path, body).status_code == 422


def test_times_out_of_range_are_refused(admin: Api) -> None:
    answer = admin.get("/audit-events", params={"since": "0001-01-01T00:00:00+14:00"})
    assert answer.status_code == 422


def test_long_unmatched_paths_are_still_audited(admin: Api) -> None:
    path = "/nothing/" + "x" * 300
    assert admin.post(path, {}).status_code == 404
    events = admin.ok(admin.get("/audit-events", params={"result": "failure"}))["items"]
    assert events[0]["status_code"] == 404 and events[0]["action"].startswith("POST /api/v1/no")


def test_refused_input_is_audited(admin: Api, root_id: str) -> None:
    admin.post("/tenants/t-%00x/actions", {"action": "move", "parent_id": root_id})
    huge = {"name": "big", "parent_id": root_id, "description": "x" * (1024 * 1024 + 10)}
    admin.post("/tenants", huge)
    events = admin.ok(admin.get("/audit-events", params={"result": "failure"}))["items"]
    assert [e["status_code"] for e in events[:2]] == [413, 400]
    assert all(e["actor_id"] == admin.me["id"] for e in events[:2])


def test_oversized_stream_is_audited_as_413(admin: Api) -> None:
    def chunks():
        for _ in range(20):
            yield b"x" * 65536

    admin.call("POST", "/tenants", content=chunks(), headers={"content-type": "application/json"})
    events = admin.ok(admin.get("/audit-events", params={"action": "tenant.create"}))["items"]
    assert events[0]["status_code"] == 413
