"""moto's AWS emulator as a server for the ec2 driver's tests.

:func:`running` starts ``python -m moto.server`` on 127.0.0.1 in a subprocess and yields its
URL once it answers. The port is 0, so the kernel picks a free one (no race between pytest-xdist
workers, each of which starts its own server); the real port is read from the server's banner.
"""

import contextlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BANNER = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


def _url(log: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    """The server's URL, once it is printed and the server answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited ({process.returncode}): {log.read_text()}")
        if found := BANNER.search(log.read_text(errors="replace")):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{found[1]}/moto-api/", timeout=1)
                return found[1]
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer within {timeout}s: {log.read_text()}")


@contextlib.contextmanager
def running(timeout: float = 60) -> Iterator[str]:
    """A fresh moto server; stopped (and its log removed) on exit."""
    with tempfile.TemporaryDirectory(prefix="yunguan-moto-") as workdir:
        log = Path(workdir, "server.log")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            yield _url(log, process, timeout)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def enable_authentication(url: str) -> None:
    """From now on the server checks every request's signature against its IAM users (it has
    none, so every access key is refused). moto accepts any credentials until this is called."""
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """The URL of this test session's (or pytest-xdist worker's) moto server."""
    with running() as url:
        yield url
