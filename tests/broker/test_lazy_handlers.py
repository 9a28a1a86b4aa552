"""The handler registry imports a handler module at the first request of its api: its stand-in
advertises the versions of the generated index, which must be what the module serves."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import broker.handlers as handlers
from broker.handlers.base import Handler

REPO = Path(__file__).resolve().parents[2]


def test_every_stand_in_matches_its_module() -> None:
    for api_key, module in handlers.MODULE_OF.items():
        served: Handler = importlib.import_module(f"broker.handlers.{module}").HANDLER
        entry = handlers.HANDLERS[api_key]
        assert (entry.api_key, entry.min_version, entry.max_version) == (
            served.api_key,
            served.min_version,
            served.max_version,
        ), module


def test_load_puts_the_module_handler_in_both_registries() -> None:
    for api_key in handlers.MODULE_OF:
        handler = handlers.load(api_key)
        assert handlers.HANDLERS[api_key] is handler
        if api_key not in handlers.CLUSTER_MODE_APIS:
            assert handlers.handlers_for(False)[api_key] is handler
        assert handler.handle.__module__ == f"broker.handlers.{handlers.MODULE_OF[api_key]}"


def run(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()


def test_importing_the_broker_imports_no_handler_but_api_versions() -> None:
    run(
        "import sys\n"
        "import broker.app, broker.embedding\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('broker.handlers.'))\n"
        "assert loaded == ['broker.handlers.api_versions', 'broker.handlers.base'], loaded\n"
        "from broker.handlers.api_versions import advertised\n"
        "assert len(advertised(True)) == 53 and len(advertised(False)) == 45\n"
        "assert 'broker.handlers.produce' not in sys.modules\n"
        "assert 'protocol.messages.produce_request' not in sys.modules\n"
    )


FIRST_REQUEST = """
import sys
from types import SimpleNamespace

import broker.handlers as h
from protocol.messages.heartbeat_request import HeartbeatRequest

stand_in = h.HANDLERS[12]
assert 'broker.handlers.heartbeat' not in sys.modules
coordinator = SimpleNamespace(heartbeat=lambda group, member, instance, generation: 27)
ctx = SimpleNamespace(version=4, broker=SimpleNamespace(group_coordinator=coordinator, authorizer=None))
response = stand_in.handle(ctx, HeartbeatRequest('g', 1, 'm'))
assert type(response).__name__ == 'HeartbeatResponse' and response.error_code == 27, response
assert h.HANDLERS[12] is sys.modules['broker.handlers.heartbeat'].HANDLER
assert h.handlers_for(False)[12] is h.HANDLERS[12]
"""


def test_a_first_request_through_a_stand_in_loads_the_module_and_answers() -> None:
    run(FIRST_REQUEST)  # in a fresh process: nothing loaded before


GROUP_MODULES_IN_SLICES = """
import asyncio, sys
from broker.handlers import find_coordinator

async def main():
    ticks = 0
    stop = False

    async def ticker():
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    missing = [m for m in find_coordinator._GROUP_MODULES if m not in sys.modules]
    start = ticks
    await find_coordinator._load_group_modules()
    stop = True
    await task
    assert len(missing) >= 5, missing
    assert all(m in sys.modules for m in find_coordinator._GROUP_MODULES)
    # The loop ran other work between the modules: once per module at least.
    assert ticks - start >= len(missing), (ticks - start, missing)

asyncio.run(main())
"""


def test_the_first_group_lookup_imports_the_coordinator_in_slices() -> None:
    run(GROUP_MODULES_IN_SLICES)
