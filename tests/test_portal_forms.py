"""Portal form posts without a browser: same-origin rule and the session cookie."""

from tests.support.api import ADMIN_PASSWORD, Api

ORIGIN = {"origin": "http://testserver"}


def test_form_posts_must_come_from_this_site(client, admin: Api, root_id: str) -> None:
    login = client.post(
        "/login",
        data={"username": "admin", "password": ADMIN_PASSWORD},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert login.status_code == 303
    form = {"name": "via-form", "parent_id": root_id}
    assert client.post("/tenants/new", data=form).status_code == 403
    foreign = client.post("/tenants/new", data=form, headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403
    same = client.post("/tenants/new", data=form, headers=ORIGIN)
    assert same.status_code == 200 and "via-form" in same.text
    assert len(admin.ok(admin.get("/tenants", params={"name": "via-form"}))["items"]) == 1


def test_pages_need_a_session(client) -> None:
    answer = client.get("/tenants", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    htmx = client.get("/users", headers={"hx-request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"
