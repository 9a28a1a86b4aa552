"""What importing the broker loads: nothing a first start does not need (the time to a first
round trip of an embedded broker is mostly imports; bench/bench_embedded.py)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import broker.cluster.controller as controller

REPO = Path(__file__).resolve().parents[2]

#: Loaded at first use only: the record codecs, crc32c's package (its __init__ imports
#: importlib.metadata and argparse), the cluster controller, the handlers of unused apis.
NOT_AT_START = (
    "cramjam",
    "lz4",
    "zstandard",
    "importlib.metadata",
    "argparse",
    "broker.cluster.controller.controller",
    "broker.cluster.controller.context",
    "broker.handlers.produce",
    "broker.handlers.leader_and_isr",
    "broker.txn.coordinator",
    "protocol.messages.produce_request",
    "protocol.messages.fetch_response",
    "prometheus_client",  # only with brook.metrics.listener set
)


def test_importing_the_broker_loads_none_of_what_waits_for_first_use() -> None:
    code = (
        "import sys\n"
        "import broker.app, broker.embedding\n"
        f"print([name for name in {NOT_AT_START!r} if name in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "[]"


def test_the_controller_package_exports_resolve_to_their_modules() -> None:
    assert set(controller.__all__) == set(controller._MODULE_OF)
    for name in controller.__all__:
        module = importlib.import_module(f"broker.cluster.controller.{controller._MODULE_OF[name]}")
        assert getattr(controller, name) is getattr(module, name)
    assert not hasattr(controller, "NoSuchName")
