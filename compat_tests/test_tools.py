"""A missing kcat or kafkajs fails the compatibility tests in CI and skips them elsewhere."""

from __future__ import annotations

import shutil

import pytest

from compat_tests.clients import tools


@pytest.mark.parametrize("require", [tools.require_kcat, tools.require_kafkajs])
def test_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch, require: object) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        require()  # type: ignore[operator]


@pytest.mark.parametrize("require", [tools.require_kcat, tools.require_kafkajs])
def test_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, require: object) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require()  # type: ignore[operator]


def test_kafkajs_without_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(tools, "NODE_DIR", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="npm ci"):
        tools.require_kafkajs()
