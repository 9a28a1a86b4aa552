"""Run compat_tests/node/kafkajs_client.js (kafkajs 2.2.4) with one JSON command."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from compat_tests.clients.tools import NODE_DIR, require_kafkajs

SCRIPT = NODE_DIR / "kafkajs_client.js"


class KafkajsError(AssertionError):
    pass


def run_kafkajs(command: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
    """Run one command; returns the script's JSON result or raises with its output."""
    node = require_kafkajs()
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    try:
        proc = subprocess.run(
            [node, str(SCRIPT)],
            input=json.dumps(command).encode(),
            capture_output=True,
            timeout=timeout,
            cwd=NODE_DIR,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkajsError(
            f"kafkajs {command.get('op')} did not finish in {timeout} s; stderr:\n"
            f"{(exc.stderr or b'').decode(errors='replace')[-3000:]}"
        ) from None
    out = proc.stdout.decode(errors="replace").strip().splitlines()
    result = json.loads(out[-1]) if out else {"error": "no output"}
    if proc.returncode != 0 or "error" in result:
        raise KafkajsError(
            f"kafkajs {command.get('op')} failed (exit {proc.returncode}): {result.get('error')}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')[-3000:]}"
        )
    return result
