"""A Redfish BMC for tests: sushy-tools' ``sushy-emulator`` on its fake backend (no libvirt).

:func:`running` starts one on 127.0.0.1 (a free port, its own state directory, HTTP basic
auth with a random password) serving :data:`NODES`, and stops it afterwards;
:func:`redfish_emulator` is the pytest fixture (one emulator per xdist worker).

The fake backend keeps power state and the boot override, and sushy-tools serves ``Storage``
drives from its config. It knows no processors or memory and has no writable ``AssetTag``,
which real BMCs have. Started as ``python -m tests.support.redfish_emulator`` (as
:func:`running` does), the emulator learns both: :class:`ProfiledFakeDriver` reports each
node's processors, memory and SimpleStorage from its profile, and a system accepts a PATCH of
``AssetTag``. Power changes land :data:`POWER_DELAY_S` after the request (sushy-tools: 1-11 s
at random) and meanwhile show as ``PoweringOn``/``PoweringOff``, as on real BMCs.
"""

import contextlib
import dataclasses
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import bcrypt
import flask
import httpx
import pytest
from sushy_tools import error
from sushy_tools.emulator.resources.systems import fakedriver

ROOT = Path(__file__).resolve().parents[2]
GB = 10**9
STORAGE_ID = "1"
POWER_DELAY_S = 2.0


@dataclasses.dataclass(frozen=True)
class Node:
    """One bare-metal node's hardware. ``mhz`` 0: the BMC lists no processors, only a
    ProcessorSummary count. ``simple_storage``: disks under SimpleStorage, not Storage.
    ``tag_writable`` False: a PATCH of AssetTag is refused, as stock sushy-tools does."""

    uuid: str
    name: str
    sockets: int
    cores: int  # per socket
    mhz: int
    memory_gib: int
    disks_gb: tuple[int, ...]
    simple_storage: bool = False
    tag_writable: bool = True

    @property
    def path(self) -> str:
        return f"/redfish/v1/Systems/{self.uuid}"


def _uuid(number: int) -> str:
    return f"7f3c2a10-0000-4a6e-9d1b-{number:012d}"


NODES = (
    Node(_uuid(1), "metal-small", 1, 8, 2400, 32, (480, 480)),
    Node(_uuid(2), "metal-large", 2, 16, 3000, 256, (1920,) * 4),
    Node(_uuid(3), "metal-legacy", 1, 4, 0, 16, (1000,), simple_storage=True),
    Node(_uuid(4), "metal-stock", 1, 8, 2400, 32, (480, 480), tag_writable=False),
)


@dataclasses.dataclass(frozen=True)
class Emulator:
    url: str
    username: str
    password: str
    nodes: tuple[Node, ...]

    def get(self, path: str) -> dict[str, Any]:
        """A resource as the emulator serves it, read past any driver."""
        response = httpx.get(self.url + path, auth=(self.username, self.password), timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_power(self, node: Node, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (current := self.get(node.path)["PowerState"]) != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.name} is {current}, not {state}")
            time.sleep(0.2)


# --- the emulator process ------------------------------------------------------------------


class ProfiledFakeDriver(fakedriver.FakeDriver):
    """sushy-tools' fake systems plus the hardware in each one's ``profile`` and an AssetTag."""

    def get_power_state(self, identity: str) -> str:
        system = self._get(identity)  # lands a change that is due
        pending = system.get("pending_power")
        return f"Powering{pending['power_state']}" if pending else system["power_state"]

    def set_power_state(self, identity: str, state: str) -> None:
        """As sushy-tools does it, but after a fixed delay, and a later request wins."""
        system = self._get(identity)
        if "Restart" in state:
            system["power_state"], target = "Off", "On"
        elif "On" in state:
            target = "On"
        elif state in ("ForceOff", "GracefulShutdown"):
            target = "Off"
        else:
            raise error.NotSupportedError(f"Power state {state} is not supported")
        change = {"power_state": target, "apply_time": time.time() + POWER_DELAY_S}
        self._update(system, pending_power=change)

    def _profile(self, identity: str) -> dict[str, Any]:
        return self._get(identity)["profile"]

    def get_total_cpus(self, identity: str) -> int:
        profile = self._profile(identity)
        return profile["sockets"] * profile["cores"]

    def get_total_memory(self, identity: str) -> int:
        return self._profile(identity)["memory_gib"]

    def get_processors(self, identity: str) -> list[dict[str, Any]]:
        profile = self._profile(identity)
        if not profile["mhz"]:
            raise error.NotSupportedError("this node does not list its processors")
        return [
            {
                "id": f"CPU{n}",
                "Id": f"CPU{n}",  # processor.json reads both spellings
                "socket": f"CPU {n}",
                "vendor": "Intel(R) Corporation",
                "model": "Xeon",
                "cores": profile["cores"],
                "threads": 2 * profile["cores"],
            }
            for n in range(profile["sockets"])
        ]

    def get_max_speed_mhz(self, identity: str) -> int:
        return self._profile(identity)["mhz"]

    def get_simple_storage_collection(self, identity: str) -> dict[str, Any]:
        profile = self._profile(identity)
        if not profile["simple_storage"]:
            raise error.NotSupportedError("this node's disks are under Storage")
        devices = [
            {"Name": f"Disk {n}", "CapacityBytes": gb * GB}
            for n, gb in enumerate(profile["disks_gb"])
        ]
        return {"sata": {"Id": "sata", "Name": "SATA", "DeviceList": devices}}

    def get_asset_tag(self, identity: str) -> str:
        return self._get(identity).get("asset_tag", "")

    def asset_tag_writable(self, identity: str) -> bool:
        return self._profile(identity)["tag_writable"]

    def set_asset_tag(self, identity: str, tag: str) -> None:
        self._update(identity, asset_tag=tag)


def _extend(app: flask.Flask) -> None:
    """Serve what sushy-tools' templates leave out: AssetTag (also writable) and MaxSpeedMHz."""

    @app.before_request
    def patch_asset_tag() -> tuple[str, int] | None:
        request = flask.request
        if request.endpoint != "system_resource" or request.method != "PATCH":
            return None
        body = request.get_json(silent=True) or {}
        identity = request.view_args["identity"]
        if "AssetTag" not in body or not app.systems.asset_tag_writable(identity):
            return None  # sushy-tools answers 400 to an AssetTag alone
        app.systems.set_asset_tag(identity, body["AssetTag"])
        return None if set(body) - {"AssetTag"} else ("", 204)

    @app.after_request
    def add_properties(response: flask.Response) -> flask.Response:
        request = flask.request
        if request.method != "GET" or response.status_code != 200:
            return response
        identity = (request.view_args or {}).get("identity")
        if request.endpoint == "system_resource":
            extra = {"AssetTag": app.systems.get_asset_tag(identity)}
        elif request.endpoint == "processor":
            extra = {"MaxSpeedMHz": app.systems.get_max_speed_mhz(identity)}
        else:
            return response
        response.set_data(json.dumps(response.get_json() | extra))
        return response


def _serve() -> int:
    from sushy_tools.emulator import main

    fakedriver.FakeDriver = ProfiledFakeDriver  # what SUSHY_EMULATOR_FAKE_DRIVER builds
    _extend(main.app)
    return main.main()


# --- starting and stopping it --------------------------------------------------------------


def _fake_system(number: int, node: Node) -> dict[str, Any]:
    return {
        "uuid": node.uuid,
        "name": node.name,
        "power_state": "Off",
        "external_notifier": False,
        "nics": [{"mac": f"52:54:00:00:00:{number:02x}"}],
        "profile": dataclasses.asdict(node),
    }


def _storage(node: Node) -> list[dict[str, Any]]:
    if node.simple_storage:
        return []
    return [
        {
            "Id": STORAGE_ID,
            "Name": "Local Storage Controller",
            "StorageControllers": [{"MemberId": "0", "Name": "RAID", "SpeedGbps": 12}],
            "Drives": [f"Disk{n}" for n in range(len(node.disks_gb))],
        }
    ]


def _drives(node: Node) -> list[dict[str, Any]]:
    return [
        {"Id": f"Disk{n}", "Name": f"Disk {n}", "CapacityBytes": gb * GB, "Protocol": "SATA"}
        for n, gb in enumerate(node.disks_gb)
    ]


def _write_config(directory: Path, nodes: tuple[Node, ...], username: str, password: str) -> Path:
    auth_file = directory / "htpasswd"
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4))  # checked per request
    auth_file.write_text(f"{username}:{digest.decode()}\n")
    settings = {
        "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_STATE_DIR": str(directory / "state"),  # default is shared in /tmp
        "SUSHY_EMULATOR_AUTH_FILE": str(auth_file),
        "SUSHY_EMULATOR_FAKE_SYSTEMS": [_fake_system(n, node) for n, node in enumerate(nodes)],
        "SUSHY_EMULATOR_STORAGE": {node.uuid: _storage(node) for node in nodes},
        "SUSHY_EMULATOR_DRIVES": {(node.uuid, STORAGE_ID): _drives(node) for node in nodes},
    }
    config = directory / "emulator.conf"
    config.write_text("".join(f"{key} = {value!r}\n" for key, value in settings.items()))
    return config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(process: subprocess.Popen, url: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):  # not up, or not JSON
            if "RedfishVersion" in httpx.get(f"{url}/redfish/v1/", timeout=1).json():
                return process.poll() is None  # not another server that took the port
        time.sleep(0.1)
    return False


def _launch(config: Path, log: IO[bytes]) -> tuple[subprocess.Popen, str]:
    for _attempt in range(3):  # the free port may be taken before the emulator binds it
        port = _free_port()
        command = [sys.executable, "-m", __name__, "--config", str(config)]
        command += ["--interface", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        if _answers(process, url):
            return process, url
        _stop(process)
    log_text = Path(log.name).read_text(errors="replace")
    raise RuntimeError(f"sushy-emulator did not start:\n{log_text[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running(directory: Path, nodes: tuple[Node, ...] = NODES) -> Iterator[Emulator]:
    """An emulator serving ``nodes``, with its config, state and log in ``directory``."""
    username, password = "yunguan", secrets.token_urlsafe(12)
    config = _write_config(directory, nodes, username, password)
    with open(directory / "emulator.log", "wb") as log:
        process, url = _launch(config, log)
        try:
            yield Emulator(url, username, password, nodes)
        finally:
            _stop(process)


@pytest.fixture(scope="session")
def redfish_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running(tmp_path_factory.mktemp("redfish")) as emulator:
        yield emulator


if __name__ == "__main__":
    sys.exit(_serve())
