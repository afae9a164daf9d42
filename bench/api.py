"""API throughput and latency: ``GET /me`` and ``GET /tenants`` over 1,000 tenants.

PostgreSQL (``$YUNGUAN_TEST_PG_URL``; ``make bench`` starts a throw-away cluster), the real
``yunguan serve --workers 2`` process, and ``wrk`` as the load generator on the same machine.
Prints one JSON line per endpoint and appends the figures to docs/benchmarks.md.
"""

import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.support.pgcluster import create_database

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Load-Test-Passw0rd!"
TENANTS = 1000
DURATION = os.environ.get("BENCH_DURATION", "20s")
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))


def seed_tenants(url: str, root_admin: str) -> None:
    """1,000 tenants: 10 organisations, 9 departments each, 10 teams each (plus the parents)."""
    from yunguan.core.db import Database
    from yunguan.identity.models import User
    from yunguan.identity.schemas import TenantCreate
    from yunguan.identity.scope import Principal
    from yunguan.identity.service import create_tenant, ensure_root_tenant

    db = Database(url)
    with db.session() as session:
        root = ensure_root_tenant(session)
        admin = session.query(User).filter_by(username=root_admin).one()
        principal = Principal(
            user_id=admin.id,
            username=root_admin,
            tenant_id=root.id,
            tenant_path=root.path,
            roles=frozenset({"platform-admin"}),
        )
        count = 0
        for org in range(10):
            o = create_tenant(
                session, principal, TenantCreate(name=f"org-{org}", parent_id=root.id)
            )
            count += 1
            for dept in range(9):
                d = create_tenant(
                    session, principal, TenantCreate(name=f"dept-{dept}", parent_id=o.id)
                )
                count += 1
                for team in range(10):
                    if count >= TENANTS - 1:
                        break
                    create_tenant(
                        session, principal, TenantCreate(name=f"team-{team}", parent_id=d.id)
                    )
                    count += 1
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))  # steady state, not autovacuum mid-measurement
    db.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url: str, token: str, duration: str = DURATION) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{duration}",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def main() -> None:
    server = os.environ.get("YUNGUAN_TEST_PG_URL")
    if not server:
        sys.exit("run it through make bench (needs YUNGUAN_TEST_PG_URL)")
    url = create_database(server, "yunguan_bench")
    env = {**os.environ, "YUNGUAN_DATABASE_URL": url, "YUNGUAN_LOG_LEVEL": "WARNING"}
    yunguan = [sys.executable, "-m", "yunguan"]
    subprocess.run(
        [
            *yunguan,
            "admin",
            "create-user",
            "--username",
            "bench",
            "--password",
            PASSWORD,
            "--platform-admin",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    seed_tenants(url, "bench")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*yunguan, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "bench", "password": PASSWORD}
        ).json()["access_token"]
        listed = httpx.get(
            f"{base}/api/v1/tenants?limit=1000", headers={"Authorization": f"Bearer {token}"}
        ).json()["items"]
        assert len(listed) == TENANTS, len(listed)
        wrk(f"{base}/api/v1/me", token, duration="3s")  # warm-up, not recorded
        results = []
        for endpoint in ("/api/v1/me", "/api/v1/tenants", "/api/v1/tenants?limit=1000"):
            figures = {
                "bench": "api",
                "endpoint": f"GET {endpoint}",
                "tenants": TENANTS,
                "server_workers": 2,
                "connections": CONNECTIONS,
                "duration": DURATION,
                **wrk(base + endpoint, token),
            }
            print(json.dumps(figures), flush=True)
            results.append(figures)
    finally:
        process.terminate()
        process.wait(20)
    record(results)


def record(results: list[dict]) -> None:
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        f"\n### bench/api.py — {when}, commit {commit}, {machine}\n",
        "PostgreSQL 15 (throw-away cluster, fsync on), `yunguan serve --workers 2`, "
        f"wrk with {CONNECTIONS} connections for {DURATION} on the same machine.\n",
        "| endpoint | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{r['endpoint']}` | {r['requests_per_s']:.0f} | {r['p50_ms']:.2f} | "
        f"{r['p99_ms']:.2f} | {r['errors']} |"
        for r in results
    ]
    with (ROOT / "docs" / "benchmarks.md").open("a") as doc:
        doc.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
