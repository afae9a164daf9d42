"""The ``yunguan`` command: server processes, administration, and the tenant-facing client."""

import contextlib
import os
import signal
import threading
from typing import Annotated

import typer
import uvicorn

from yunguan.billing import cli as billing_cli
from yunguan.catalog import cli as catalog_cli
from yunguan.cli import client as http
from yunguan.cli.output import Format, OutputOption, show
from yunguan.compute import cli as compute_cli
from yunguan.core.config import get_settings
from yunguan.core.db import Database, set_database
from yunguan.core.errors import Problem
from yunguan.core.logging import configure_logging
from yunguan.core.migrate import upgrade
from yunguan.identity.cli import audit, group, role, tenant, user
from yunguan.inventory import cli as inventory_cli
from yunguan.network import cli as network_cli
from yunguan.notifications import cli as notifications_cli
from yunguan.orders import cli as orders_cli
from yunguan.providers import cli as providers_cli
from yunguan.quota import cli as quota_cli
from yunguan.scheduler import cli as scheduler_cli

app = typer.Typer(help="Yunguan (云管) cloud management platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
admin_app = typer.Typer(help="Administration from the server's shell.", no_args_is_help=True)
operation_app = typer.Typer(help="Long-running operations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
for sub, name in (
    (tenant, "tenant"),
    (user, "user"),
    (group, "group"),
    (role, "role"),
    (audit, "audit"),
    (operation_app, "operation"),
    (quota_cli.quota, "quota"),
    *(
        (sub, noun)
        for commands in (
            inventory_cli.COMMANDS,
            scheduler_cli.COMMANDS,
            network_cli.COMMANDS,
            providers_cli.COMMANDS,
            compute_cli.COMMANDS,
            catalog_cli.COMMANDS,
            orders_cli.COMMANDS,
            notifications_cli.COMMANDS,
            billing_cli.COMMANDS,
        )
        for noun, sub in commands.items()
    ),
):
    app.add_typer(sub, name=name)


def _database() -> Database:
    settings = get_settings()
    configure_logging(settings.log_level)
    db = Database(settings.resolved_database_url)
    set_database(db)
    return db


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    demo: Annotated[bool, typer.Option(help="seed demo tenants and users on first start")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="API processes; >1 runs no workflow workers (start 'yunguan worker' beside them)"
        ),
    ] = 1,
) -> None:
    """API, portal and (with one process) the workflow workers."""
    db = _database()
    upgrade(db)
    settings = get_settings()
    if demo:
        from yunguan.demo import DEMO_ADMIN, DEMO_PASSWORD, seed

        with db.session() as session:
            seeded = seed(session, settings)
        typer.echo(f"demo data {'created' if seeded else 'already present'}")
        typer.echo(f"  admin login: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}")
        typer.echo(f"  tenant users (e.g. acme-group-admin) password: {DEMO_PASSWORD}")
    db.dispose()
    typer.echo(f"Yunguan portal: http://{host}:{port}/  API: http://{host}:{port}/api/v1/docs")
    if workers > 1:
        os.environ["YUNGUAN_RUN_WORKERS"] = "false"
    uvicorn.run(
        "yunguan.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run workflow workers only (no API)."""
    from yunguan.workflows import engine

    _database()
    settings = get_settings()
    engine.launch(settings)
    typer.echo(f"worker {settings.executor_id} running; Ctrl-C to stop")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    engine.shutdown()


@app.command()
def agent(
    host_id: Annotated[str, typer.Option(help="this host's id in the inventory")],
    url: Annotated[str, typer.Option(envvar="YUNGUAN_AGENT_URL", help="the controller")],
    username: Annotated[str, typer.Option(envvar="YUNGUAN_AGENT_USERNAME")],
    password: Annotated[str, typer.Option(envvar="YUNGUAN_AGENT_PASSWORD", hide_input=True)],
    plug: Annotated[str, typer.Option(help="tap (libvirt guests) or netns (netns VMs)")] = "tap",
    uplink_bridge: Annotated[
        str | None, typer.Option(help="the host's bridge to the public network (EIPs)")
    ] = None,
    host_netns: Annotated[
        str | None, typer.Option(help="the namespace with the underlay (default: this one)")
    ] = None,
    prefix: Annotated[str, typer.Option(help="prefix of the router namespaces")] = "yg",
) -> None:
    """Run the data-plane agent of one hypervisor host (root)."""
    from yunguan.dataplane.agent import Agent, Controller
    from yunguan.dataplane.kernel import Kernel
    from yunguan.dataplane.ports import NetnsVms, Taps

    if plug not in ("tap", "netns"):
        raise typer.BadParameter("tap or netns", param_hint="--plug")
    configure_logging(get_settings().log_level)
    kernel = Kernel(host_netns=host_netns, prefix=prefix, uplink_bridge=uplink_bridge)
    plugger = NetnsVms(kernel.ns) if plug == "netns" else Taps(kernel.ns, host_netns)
    runner = Agent(host_id, Controller(url, username, password), kernel, plugger)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        runner.run(stop)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply schema migrations."""
    upgrade(_database(), revision)
    typer.echo("database is up to date")


@admin_app.command("create-user")
def admin_create_user(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    platform_admin: Annotated[bool, typer.Option("--platform-admin")] = False,
) -> None:
    """Create a user in the root tenant (the first platform administrator)."""
    from yunguan.identity.service import bootstrap_user

    db = _database()
    upgrade(db)
    try:
        with db.session() as session:
            created = bootstrap_user(
                session,
                username,
                password,
                ["platform-admin"] if platform_admin else ["member"],
                get_settings(),
            )
    except Problem as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1)
    typer.echo(f"created {created.id} ({username}) in the root tenant")


@admin_app.command("vendor-secret")
def admin_vendor_secret(
    template_id: Annotated[str, typer.Argument(help="the external service template's id")],
) -> None:
    """The secret that signs the platform's calls to one external (SaaS) template's vendor:
    give it to the vendor, who checks X-Yunguan-Signature with it. Derived from the
    platform key (YUNGUAN_SECRET_KEY), so run it where the server runs."""
    from yunguan.orders import vendors

    typer.echo(vendors.secret(template_id))


@app.command()
def login(
    url: str,
    username: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Log in to a Yunguan server and remember the token."""
    answer = http.Client(url).post("/auth/token", {"username": username, "password": password})
    http.save_login(url, answer["access_token"], username)
    typer.echo(f"logged in to {url} as {username}")


@app.command()
def logout() -> None:
    """Revoke the saved token and forget it."""
    http.Client.from_login().post("/auth/logout", {})
    http.forget_login()
    typer.echo("logged out")


@app.command()
def whoami(output: OutputOption = Format.table) -> None:
    """The logged-in user, tenant and roles."""
    show(
        http.Client.from_login().get("/me"),
        ["id", "username", "tenant_id", "tenant_name", "roles"],
        output,
    )


@operation_app.command("show")
def operation_show(
    operation_id: str,
    wait: Annotated[bool, typer.Option(help="wait for it to finish")] = False,
    output: OutputOption = Format.table,
) -> None:
    client = http.Client.from_login()
    operation = client.get(f"/operations/{operation_id}")
    if wait:
        operation = client.wait(operation)
    show(operation, ["id", "kind", "target_id", "state", "step", "progress", "error"], output)
