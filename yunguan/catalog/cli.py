"""``yunguan service-template|category|catalog-item|catalog …``: the catalog commands."""

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from yunguan.cli.client import Client
from yunguan.cli.output import Format, OutputOption, show
from yunguan.inventory.cli import given, noun_app

Opt = typer.Option
Name = Annotated[str, typer.Argument(help="name")]
Number = Annotated[int, typer.Argument(help="the version number")]
Definition = Annotated[
    Path | None,
    Opt(help="YAML or JSON file with 'parameters' (a list) and/or 'spec' (an object)"),
]

COLUMNS = {
    "service-template": ["id", "name", "kind", "description"],
    "version": ["id", "template_id", "version", "state", "submitted_by", "reviewed_by"],
    "category": ["id", "name", "sort_order", "description"],
    "catalog-item": ["id", "name", "category_id", "kind", "version", "price_monthly"],
}
COMMANDS = {
    "service-template": noun_app(
        "/service-templates",
        COLUMNS["service-template"],
        "Service templates: what can be ordered, in reviewed versions.",
        ("name", "kind"),
        deletes=False,
    ),
    "category": noun_app("/categories", COLUMNS["category"], "Catalog categories.", ("name",)),
    "catalog-item": noun_app(
        "/catalog-items",
        COLUMNS["catalog-item"],
        "Catalog items: published template versions offered to tenant subtrees.",
        ("category_id", "name"),
    ),
    "catalog": typer.Typer(help="The whole catalog as YAML.", no_args_is_help=True),
}
template = COMMANDS["service-template"]
version_app = typer.Typer(help="A template's versions.", no_args_is_help=True)
template.add_typer(version_app, name="version")


def _definition(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise typer.BadParameter("a mapping with 'parameters' and/or 'spec'")
    return {k: loaded[k] for k in ("parameters", "spec") if k in loaded}


@template.command("create")
def template_create(
    name: Name,
    kind: Annotated[str, Opt(help="instance, bundle, baremetal, cloud-instance or external")],
    definition: Definition = None,
    description: Annotated[str | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    """A template and its first version (a draft)."""
    body = given(name=name, kind=kind, description=description) | _definition(definition)
    show(Client.from_login().post("/service-templates", body), COLUMNS["service-template"], output)


def _versions(template_id: str) -> str:
    return f"/service-templates/{template_id}/versions"


@version_app.command("list")
def version_list(template_id: str, output: OutputOption = Format.table) -> None:
    show(Client.from_login().get(_versions(template_id)), COLUMNS["version"], output)


@version_app.command("show")
def version_show(template_id: str, number: Number, output: OutputOption = Format.table) -> None:
    show(Client.from_login().get(f"{_versions(template_id)}/{number}"), COLUMNS["version"], output)


@version_app.command("create")
def version_create(
    template_id: str, definition: Definition = None, output: OutputOption = Format.table
) -> None:
    """The next version, a draft (what the file does not give is the latest version's)."""
    answer = Client.from_login().post(_versions(template_id), _definition(definition))
    show(answer, COLUMNS["version"], output)


def _action(name: str, help_text: str) -> None:
    @template.command(name, help=help_text)
    def act(
        template_id: str,
        number: Number,
        comment: Annotated[str | None, Opt(help="why (a rejection needs one)")] = None,
        output: OutputOption = Format.table,
    ) -> None:
        body = given(action=name, comment=comment)
        path = f"{_versions(template_id)}/{number}/actions"
        show(Client.from_login().post(path, body), COLUMNS["version"], output)


for _name, _help in (
    ("submit", "Submit a draft version for review."),
    ("approve", "Publish a version in review (not one you submitted)."),
    ("reject", "Send a version in review back to draft, with a comment."),
    ("offline", "Take a published version offline (its items are hidden)."),
    ("delete", "Delete a draft or offline version."),
):
    _action(_name, _help)


@COMMANDS["category"].command("create")
def category_create(
    name: Name,
    description: Annotated[str | None, Opt()] = None,
    sort_order: Annotated[int | None, Opt("--sort-order")] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, description=description, sort_order=sort_order)
    show(Client.from_login().post("/categories", body), COLUMNS["category"], output)


@COMMANDS["catalog-item"].command("create")
def item_create(
    name: Name,
    category: Annotated[str, Opt(help="category id")],
    version_id: Annotated[str, Opt("--version-id", help="a published template version's id")],
    tenant: Annotated[
        list[str] | None, Opt(help="a tenant subtree that sees it (repeatable; none: all)")
    ] = None,
    price: Annotated[str | None, Opt(help="list price per month, e.g. 120.00")] = None,
    description: Annotated[str | None, Opt()] = None,
    output: OutputOption = Format.table,
) -> None:
    body = given(name=name, category_id=category, template_version_id=version_id)
    body |= given(tenant_ids=tenant, description=description, price_monthly=price)
    show(Client.from_login().post("/catalog-items", body), COLUMNS["catalog-item"], output)


@COMMANDS["catalog"].command("export")
def catalog_export(
    file: Annotated[Path | None, typer.Argument(help="where to write it (default: stdout)")] = None,
) -> None:
    """Write the catalog as YAML."""
    text = Client.from_login().send("GET", "/catalog/export").text
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text)
        typer.echo(f"exported to {file}")


@COMMANDS["catalog"].command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="a YAML file written by 'catalog export'")],
    output: OutputOption = Format.table,
) -> None:
    """Create or update, by id, everything the file holds."""
    headers = {"content-type": "application/yaml"}
    answer = Client.from_login().request(
        "POST", "/catalog/import", content=file.read_bytes(), headers=headers
    )
    show(answer, ["categories", "templates", "versions", "items"], output)
