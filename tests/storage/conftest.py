from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.log import Log

OpenLog = Callable[..., Log]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000_000)


@pytest.fixture
def open_log(tmp_path: Path, clock: ManualClock) -> Iterator[OpenLog]:
    """Open (or reopen) ``<tmp>/t-0`` with a config; logs are closed at teardown."""
    opened: list[Log] = []

    def _open(config: LogConfig | None = None, *, name: str = "t-0", **kwargs: object) -> Log:
        log = Log.open(tmp_path / name, config or LogConfig(), clock=clock, **kwargs)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield _open
    for log in opened:
        if not log._closed and not log._deleted:
            log.mark_deleted()
