"""COMPATIBILITY.md names the client versions the tests actually ran with."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_tests.clients.drivers import ALL_DRIVERS, Driver

TABLE = Path(__file__).with_name("COMPATIBILITY.md").read_text()


@pytest.mark.parametrize("driver", [pytest.param(d, id=d.name) for d in ALL_DRIVERS])
def test_table_names_the_installed_version(driver: Driver) -> None:
    if driver.name == "kcat":
        from compat_tests.clients.tools import require_kcat

        require_kcat()
    if driver.name == "kafkajs":
        from compat_tests.clients.tools import require_kafkajs

        require_kafkajs()
    row = next(line for line in TABLE.splitlines() if line.startswith(f"| {driver.name} "))
    installed = driver.version()  # e.g. "1.7.1 (librdkafka 2.0.2)"
    for part in installed.replace("(", " ").replace(")", " ").split():
        if part[0].isdigit():
            assert part in row, f"{driver.name} {installed} is not what COMPATIBILITY.md says: {row}"
