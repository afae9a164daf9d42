"""The libvirt, ec2 and redfish drivers keep nothing in Yunguan's database, so their tests
run once, in the SQLite pass of ``make test`` (the simulator's run in both)."""

import pytest

from tests.conftest import BACKEND

DATABASE_FREE = ("test_libvirt.py", "test_ec2.py", "test_redfish.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if BACKEND != "postgres":
        return
    skip = pytest.mark.skip(reason="a driver test without the database: run in the SQLite pass")
    for item in items:
        if item.path.name in DATABASE_FREE:
            item.add_marker(skip)
