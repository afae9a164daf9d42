"""A thin test client: log in once, then call the API as that principal."""

from typing import Any

import httpx

ADMIN_PASSWORD = "Platform-Passw0rd!"
PASSWORD = "Member-Passw0rd!"
API = "/api/v1"


class Api:
    def __init__(self, http: Any, token: str | None = None, me: dict | None = None) -> None:
        self.http = http
        self.token = token
        self.me = me or {}

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def login(self, username: str, password: str = PASSWORD) -> "Api":
        answer = self.http.post(
            f"{API}/auth/token", json={"username": username, "password": password}
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        me = self.http.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}).json()
        return Api(self.http, token, me)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, f"{API}{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.call("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("DELETE", path, **kwargs)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, f"{response.status_code}: {response.text}"
        return response.json() if response.content else None

    # --- builders --------------------------------------------------------------------------

    def tenant(self, parent_id: str, name: str) -> dict:
        return self.ok(self.post("/tenants", {"name": name, "parent_id": parent_id}), 201)

    def user(self, tenant_id: str, username: str, roles: list[str] | None = None) -> dict:
        body = {
            "username": username,
            "password": PASSWORD,
            "tenant_id": tenant_id,
            "roles": roles or ["member"],
        }
        return self.ok(self.post("/users", body), 201)

    def as_user(self, tenant_id: str, username: str, roles: list[str] | None = None) -> "Api":
        self.user(tenant_id, username, roles)
        return self.login(username)
