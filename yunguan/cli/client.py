"""The tenant-facing HTTP client behind ``yunguan login`` and the noun commands."""

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

err = Console(stderr=True)


def config_path() -> Path:
    override = os.environ.get("YUNGUAN_CLIENT_CONFIG")
    return Path(override) if override else Path.home() / ".config/yunguan/client.json"


def save_login(url: str, token: str, username: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"url": url, "token": token, "username": username}, file)


def forget_login() -> None:
    config_path().unlink(missing_ok=True)


class Client:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=60)

    @classmethod
    def from_login(cls) -> "Client":
        path = config_path()
        if not path.exists():
            err.print("[red]not logged in[/]: run 'yunguan login URL' first")
            raise typer.Exit(2)
        saved = json.loads(path.read_text())
        return cls(saved["url"], saved["token"])

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The server's answer; an error is printed and ends the command."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            err.print(f"[red]cannot reach {self.url}[/]: {exc}")
            raise typer.Exit(3)
        if response.status_code >= 400:
            _fail(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def collect(self, path: str, limit: int | None = None, **params: Any) -> list[dict]:
        """Every item of a collection, following cursors (at most ``limit`` items)."""
        items: list[dict] = []
        cursor = None
        while True:
            page = self.get(path, cursor=cursor, limit=min(limit or 500, 500), **params)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor or (limit and len(items) >= limit):
                return items[:limit] if limit else items

    def wait(self, operation: dict, timeout: float = 600) -> dict:
        """Poll an operation to its end, with a progress bar."""
        deadline = time.monotonic() + timeout
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[step]}"))
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task(operation["kind"], total=100, step="")
            while operation["state"] not in ("succeeded", "failed"):
                if time.monotonic() > deadline:
                    err.print(f"[yellow]still running[/]: operation {operation['id']}")
                    raise typer.Exit(4)
                time.sleep(0.3)
                operation = self.get(f"/operations/{operation['id']}")
                progress.update(task, completed=operation["progress"], step=operation["step"])
        if operation["state"] == "failed":
            err.print(f"[red]failed[/]: {operation['error']}")
            raise typer.Exit(1)
        return operation


def _fail(response: httpx.Response) -> None:
    try:
        problem = response.json()
        message = f"{problem.get('code', response.status_code)}: {problem.get('detail', '')}"
    except ValueError:
        message = f"HTTP {response.status_code}"
    err.print(f"[red]error[/] {message}")
    raise typer.Exit(1)
