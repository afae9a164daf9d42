"""``yunguan tenant|user|group|role|audit …``: the identity commands of the client."""

from datetime import datetime
from typing import Annotated

import typer

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show

TENANT_COLUMNS = ["id", "name", "parent_id", "depth", "state", "description"]
USER_COLUMNS = ["id", "username", "tenant_id", "roles", "state", "display_name"]
GROUP_COLUMNS = ["id", "name", "tenant_id", "roles", "member_ids"]
AUDIT_COLUMNS = [
    "occurred_at",
    "actor_name",
    "action",
    "target_id",
    "result",
    "status_code",
    "source_ip",
]

tenant = typer.Typer(help="Tenants: the organisation tree.", no_args_is_help=True)
user = typer.Typer(help="Users and their roles.", no_args_is_help=True)
group = typer.Typer(help="Groups: roles granted to many users at once.", no_args_is_help=True)
role = typer.Typer(help="The built-in roles.", no_args_is_help=True)
audit = typer.Typer(help="The audit log.", no_args_is_help=True)

Limit = Annotated[int | None, typer.Option(help="at most this many rows")]


# --- tenant --------------------------------------------------------------------------------


@tenant.command("list")
def tenant_list(
    parent: Annotated[str | None, typer.Option(help="only children of this tenant")] = None,
    subtree: Annotated[str | None, typer.Option(help="only this tenant and its subtree")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    rows = Client.from_login().collect("/tenants", limit, parent_id=parent, subtree_of=subtree)
    show(rows, TENANT_COLUMNS, output)


@tenant.command("show")
def tenant_show(tenant_id: str, output: OutputOption = Format.table) -> None:
    show(Client.from_login().get(f"/tenants/{tenant_id}"), TENANT_COLUMNS, output)


@tenant.command("create")
def tenant_create(
    name: str,
    parent: Annotated[str, typer.Option(help="parent tenant id")],
    description: str = "",
    output: OutputOption = Format.table,
) -> None:
    body = {"name": name, "parent_id": parent, "description": description}
    show(Client.from_login().post("/tenants", body), TENANT_COLUMNS, output)


@tenant.command("rename")
def tenant_rename(tenant_id: str, name: str, output: OutputOption = Format.table) -> None:
    show(Client.from_login().patch(f"/tenants/{tenant_id}", {"name": name}), TENANT_COLUMNS, output)


@tenant.command("move")
def tenant_move(
    tenant_id: str,
    parent: Annotated[str, typer.Option(help="new parent tenant id")],
    output: OutputOption = Format.table,
) -> None:
    moved = Client.from_login().post(
        f"/tenants/{tenant_id}/actions", {"action": "move", "parent_id": parent}
    )
    show(moved, TENANT_COLUMNS, output)


@tenant.command("delete")
def tenant_delete(
    tenant_id: str,
    wait: Annotated[bool, typer.Option(help="wait for the deletion to finish")] = True,
    output: OutputOption = Format.table,
) -> None:
    client = Client.from_login()
    accepted = client.delete(f"/tenants/{tenant_id}")
    operation = client.wait(accepted["operation"]) if wait else accepted["operation"]
    show(operation, ["id", "kind", "target_id", "state", "step", "progress"], output)


# --- user ----------------------------------------------------------------------------------


@user.command("list")
def user_list(
    tenant_id: Annotated[str | None, typer.Option("--tenant")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    show(Client.from_login().collect("/users", limit, tenant_id=tenant_id), USER_COLUMNS, output)


@user.command("show")
def user_show(user_id: str, output: OutputOption = Format.table) -> None:
    show(Client.from_login().get(f"/users/{user_id}"), USER_COLUMNS, output)


@user.command("create")
def user_create(
    username: str,
    tenant_id: Annotated[str, typer.Option("--tenant", help="tenant id")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    roles: Annotated[list[str] | None, typer.Option("--role", help="repeatable")] = None,
    display_name: str = "",
    email: str = "",
    output: OutputOption = Format.table,
) -> None:
    body = {
        "username": username,
        "tenant_id": tenant_id,
        "password": password,
        "roles": roles or ["member"],
        "display_name": display_name,
        "email": email,
    }
    show(Client.from_login().post("/users", body), USER_COLUMNS, output)


@user.command("set-roles")
def user_set_roles(
    user_id: str,
    roles: Annotated[list[str], typer.Option("--role", help="repeatable")],
    output: OutputOption = Format.table,
) -> None:
    show(Client.from_login().patch(f"/users/{user_id}", {"roles": roles}), USER_COLUMNS, output)


@user.command("set-password")
def user_set_password(
    user_id: str,
    password: Annotated[
        str, typer.Option(prompt="New password", hide_input=True, confirmation_prompt=True)
    ],
    current_password: Annotated[str | None, typer.Option(help="needed for your own")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = {"action": "set-password", "password": password}
    if current_password:
        body["current_password"] = current_password
    show(Client.from_login().post(f"/users/{user_id}/actions", body), USER_COLUMNS, output)


def _user_state_command(action: str) -> None:
    def command(user_id: str, output: OutputOption = Format.table) -> None:
        body = {"action": action}
        show(Client.from_login().post(f"/users/{user_id}/actions", body), USER_COLUMNS, output)

    command.__doc__ = f"{action.capitalize()} a user."
    user.command(action)(command)


for _action in ("unlock", "disable", "enable", "revoke-tokens"):
    _user_state_command(_action)


@user.command("delete")
def user_delete(user_id: str) -> None:
    Client.from_login().delete(f"/users/{user_id}")
    typer.echo(f"deleted {user_id}")


# --- group ---------------------------------------------------------------------------------


@group.command("list")
def group_list(
    tenant_id: Annotated[str | None, typer.Option("--tenant")] = None,
    limit: Limit = None,
    output: OutputOption = Format.table,
) -> None:
    show(Client.from_login().collect("/groups", limit, tenant_id=tenant_id), GROUP_COLUMNS, output)


@group.command("create")
def group_create(
    name: str,
    tenant_id: Annotated[str, typer.Option("--tenant")],
    roles: Annotated[list[str] | None, typer.Option("--role", help="repeatable")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = {"name": name, "tenant_id": tenant_id, "roles": roles or []}
    show(Client.from_login().post("/groups", body), GROUP_COLUMNS, output)


@group.command("add-member")
def group_add(group_id: str, user_id: str, output: OutputOption = Format.table) -> None:
    body = {"action": "add-member", "user_id": user_id}
    show(Client.from_login().post(f"/groups/{group_id}/actions", body), GROUP_COLUMNS, output)


@group.command("remove-member")
def group_remove(group_id: str, user_id: str, output: OutputOption = Format.table) -> None:
    body = {"action": "remove-member", "user_id": user_id}
    show(Client.from_login().post(f"/groups/{group_id}/actions", body), GROUP_COLUMNS, output)


@group.command("delete")
def group_delete(group_id: str) -> None:
    Client.from_login().delete(f"/groups/{group_id}")
    typer.echo(f"deleted {group_id}")


# --- role, audit ---------------------------------------------------------------------------


@role.command("list")
def role_list(output: OutputOption = Format.table) -> None:
    show(Client.from_login().get("/roles")["items"], ["name", "description"], output)


@role.command("show")
def role_show(name: str, output: OutputOption = Format.table) -> None:
    show(Client.from_login().get(f"/roles/{name}"), ["name", "description", "permissions"], output)


@audit.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option(help="actor user id")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. tenant.create, auth.login")] = None,
    result: Annotated[str | None, typer.Option(help="success or failure")] = None,
    tenant_id: Annotated[str | None, typer.Option("--tenant")] = None,
    target: Annotated[str | None, typer.Option(help="target id")] = None,
    since: Annotated[datetime | None, typer.Option(help="ISO time, UTC")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    output: OutputOption = Format.table,
) -> None:
    rows = Client.from_login().collect(
        "/audit-events",
        limit,
        actor_id=actor,
        action=action,
        result=result,
        tenant_id=tenant_id,
        target_id=target,
        since=f"{since.isoformat()}Z" if since and since.tzinfo is None else since,
    )
    show(rows, AUDIT_COLUMNS, output)
