"""The tenant-facing CLI against a real server."""

import json

import pytest
from typer.testing import CliRunner

from tests.support.api import ADMIN_PASSWORD, PASSWORD
from yunguan.cli.main import app as cli


@pytest.fixture
def run(live_url: str, tmp_path, monkeypatch):
    monkeypatch.setenv("YUNGUAN_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str, expect: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == expect, result.output
        return result.output

    invoke("login", live_url, "--username", "admin", "--password", ADMIN_PASSWORD)
    return invoke


def _json(output: str):
    return json.loads(output)


def test_tenant_user_group_role_audit_commands(run, root_id: str) -> None:
    me = _json(run("whoami", "-o", "json"))
    assert me["username"] == "admin" and me["roles"] == ["platform-admin"]
    acme = _json(run("tenant", "create", "Acme", "--parent", root_id, "-o", "json"))
    dept = _json(run("tenant", "create", "R&D", "--parent", acme["id"], "-o", "json"))
    assert dept["depth"] == 2
    listed = _json(run("tenant", "list", "--subtree", acme["id"], "-o", "json"))
    assert [t["name"] for t in listed] == ["Acme", "R&D"]
    table = run("tenant", "list", "--parent", acme["id"])
    assert "R&D" in table and dept["id"] in table
    renamed = _json(run("tenant", "rename", dept["id"], "Research", "-o", "json"))
    assert renamed["name"] == "Research"
    user = _json(
        run(
            "user",
            "create",
            "cli-user",
            "--tenant",
            acme["id"],
            "--password",
            PASSWORD,
            "--role",
            "member",
            "--role",
            "auditor",
            "-o",
            "json",
        )
    )
    assert user["roles"] == ["auditor", "member"]
    group = _json(
        run("group", "create", "ops", "--tenant", acme["id"], "--role", "approver", "-o", "json")
    )
    joined = _json(run("group", "add-member", group["id"], user["id"], "-o", "json"))
    assert joined["member_ids"] == [user["id"]]
    roles = _json(run("role", "list", "-o", "json"))
    assert {r["name"] for r in roles} >= {"platform-admin", "member"}
    events = _json(run("audit", "list", "--action", "tenant.create", "-o", "json"))
    assert {e["target_id"] for e in events} == {acme["id"], dept["id"]}
    error = run("tenant", "create", "Acme", "--parent", root_id, expect=1)
    assert "duplicate-name" in error


@pytest.mark.usefixtures("workflows")
def test_tenant_delete_waits_for_the_operation(run, root_id: str) -> None:
    doomed = _json(run("tenant", "create", "Doomed", "--parent", root_id, "-o", "json"))
    operation = _json(run("tenant", "delete", doomed["id"], "-o", "json"))
    assert operation["state"] == "succeeded"
    run("tenant", "show", doomed["id"], expect=1)


def test_logout_forgets_the_token(run) -> None:
    run("logout")
    run("whoami", expect=2)
