"""Run a command against a throw-away PostgreSQL cluster.

``python -m tests.support.pgcluster -- pytest …`` uses ``$YUNGUAN_TEST_PG_URL`` when that
server answers; otherwise it starts a private cluster (Debian's PostgreSQL binaries, a temp
dir, a free port, owned by the ``postgres`` user because initdb refuses root), exports its URL
as ``YUNGUAN_TEST_PG_URL`` to the command, and stops and removes it afterwards. Tests run it
without fsync; ``--durable`` (benchmarks) keeps PostgreSQL's durable defaults.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator


def _binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL server binaries missing: run 'make deps' (apt-get install postgresql)")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def cluster(durable: bool = False) -> Iterator[str]:
    bindir = _binaries()
    workdir = tempfile.mkdtemp(prefix="yunguan-pg-")
    data, port = os.path.join(workdir, "data"), _free_port()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")

    def run(args: list[str]) -> None:
        subprocess.run(_as_postgres(args), check=True, stdout=subprocess.DEVNULL, cwd=workdir)

    run([f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c max_connections=300"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    run([f"{bindir}/pg_ctl", "-D", data, "-o", options, "-w", "-l", f"{workdir}/log", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"])
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server (dropped first if it exists); returns its URL."""
    from sqlalchemy import create_engine, text

    admin = create_engine(
        server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    options = argv[: argv.index("--")] if "--" in argv else []
    existing = os.environ.get("YUNGUAN_TEST_PG_URL")
    if existing and _answers(existing):
        return subprocess.call(command)
    with cluster(durable="--durable" in options) as url:
        return subprocess.call(command, env={**os.environ, "YUNGUAN_TEST_PG_URL": url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
