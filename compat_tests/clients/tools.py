"""External tools a test needs (kcat, node with kafkajs installed).

In CI (``CI=true``) a missing tool is a failure: the compatibility claim must not silently
shrink. On a developer's machine the test is skipped with the reason instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


def require_kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        missing("kcat is not installed (apt-get install kcat)")
    assert path is not None
    return path


def require_kafkajs() -> str:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "kafkajs" / "package.json").exists():
        missing(f"kafkajs is not installed: run `npm ci` in {NODE_DIR}")
    assert node is not None
    return node
