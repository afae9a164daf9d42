import time

from tests.support.api import Api


def wait_operation(api: Api, operation_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        operation = api.ok(api.get(f"/operations/{operation_id}"))
        if operation["state"] in ("succeeded", "failed"):
            return operation
        if time.monotonic() > deadline:
            raise AssertionError(f"operation still {operation['state']}: {operation}")
        time.sleep(0.1)
