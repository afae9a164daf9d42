"""What every benchmark shares: percentiles, durable PostgreSQL databases, the record."""

import os
import platform
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def durable_postgres(names: Iterable[str]) -> dict[str, str]:
    """Fresh databases on the benchmark server (``$YUNGUAN_TEST_PG_URL``, started by
    ``pgcluster --durable``); empty without a server. Refuses a server that does not fsync
    its commits: figures from it would flatter."""
    from tests.support.pgcluster import create_database

    server = os.environ.get("YUNGUAN_TEST_PG_URL")
    if not server:
        return {}
    engine = create_engine(server.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        settings = [
            conn.execute(text(f"SHOW {n}")).scalar() for n in ("fsync", "synchronous_commit")
        ]
    engine.dispose()
    if settings != ["on", "on"]:
        raise SystemExit(f"PostgreSQL runs with fsync/synchronous_commit {settings}: use --durable")
    return {name: create_database(server, name) for name in names}


def table(results: list[dict], parameters: Iterable[str]) -> list[str]:
    """``results`` as the lines of a Markdown table: figure, parameters, result."""
    lines = ["| figure | parameters | result |", "|---|---|---|"]
    for result in results:
        figures = {k: v for k, v in result.items() if k != "figure"}
        params = ", ".join(f"{k}={figures.pop(k)}" for k in parameters if k in figures)
        outcome = ", ".join(f"{k}={v}" for k, v in figures.items())
        lines.append(f"| {result['figure']} | {params} | {outcome} |")
    return lines


def record_section(title: str, results: list[dict], parameters: Iterable[str]) -> None:
    """Append a table of ``results`` to docs/benchmarks.md with the machine and commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [f"\n### {title} — {when}, commit {commit or 'unknown'}, {machine}\n"]
    lines += table(results, list(parameters))
    with (ROOT / "docs" / "benchmarks.md").open("a") as doc:
        doc.write("\n".join(lines) + "\n")
