"""The cleaner against a log in use: appends, reads, truncation, retention, close and deletion
while a pass is under way, and kills at every step of its swap.

The pass is paused deterministically in its worker thread: the first ``fsync`` it makes (of
its first cleaned segment, written but not yet swapped in) blocks on an event. What the test
thread does meanwhile runs in a helper thread with a timeout, so a cleaner that holds the log's
lock through its pass makes the test fail instead of hang.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.cleaner import Cleaner, CleanerStats
from storage.clock import ManualClock
from storage.fs import FileSystem
from storage.log import Log
from storage.manager import LogManager
from tests.storage.conftest import OpenLog
from tests.storage.faults import CrashingFileSystem, SimulatedCrash
from tests.storage.test_cleaner import COMPACT, all_records, batch, latest

TIMEOUT = 10.0
CLEANER_THREAD = "test-cleaner"
NO_DELAY = COMPACT.replace(file_delete_delay_ms=0)


class PausingFileSystem(FileSystem):
    """Blocks the cleaner thread at its first ``fsync`` until :meth:`release`; or, given
    ``unlocked_call`` ("pread" or "fsync_dir") and a list that will hold the log, at its first
    such call made without that log's lock."""

    def __init__(self, unlocked_call: str = "fsync", logs: list[Log] | None = None) -> None:
        self.paused = threading.Event()
        self._release = threading.Event()
        self._done = False
        self._call = unlocked_call
        self._logs = logs if logs is not None else []

    def _maybe_pause(self, call: str) -> None:
        if call != self._call or threading.current_thread().name != CLEANER_THREAD or self._done:
            return
        if self._logs and self._logs[0]._lock._is_owned():  # type: ignore[attr-defined]
            return
        self._done = True
        self.paused.set()
        if not self._release.wait(TIMEOUT):
            raise TimeoutError("the test never released the cleaner")

    def fsync(self, fd: int) -> None:
        self._maybe_pause("fsync")
        super().fsync(fd)

    def pread(self, fd: int, size: int, position: int) -> bytes:
        self._maybe_pause("pread")
        return super().pread(fd, size, position)

    def fsync_dir(self, path: Path) -> None:
        self._maybe_pause("fsync_dir")
        super().fsync_dir(path)

    def release(self) -> None:
        self._release.set()


class CleanerRun:
    """``Cleaner().clean(log)`` in its own thread; ``result()`` waits for it."""

    def __init__(self, log: Log, now_ms: int) -> None:
        self.stats: CleanerStats | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(log, now_ms), name=CLEANER_THREAD)
        self._thread.start()

    def _run(self, log: Log, now_ms: int) -> None:
        try:
            self.stats = Cleaner().clean(log, now_ms, force=True)
        except BaseException as exc:
            self.error = exc

    def result(self) -> CleanerStats | None:
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "cleaner did not finish"
        if self.error is not None:
            raise self.error
        return self.stats


def within_timeout(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a helper thread; fail (rather than hang) if it does not finish in time."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT / 2)
    assert not thread.is_alive(), "blocked while the cleaner was paused mid-pass"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@contextlib.contextmanager
def paused_pass(log: Log, fs: PausingFileSystem, now_ms: int) -> Iterator[CleanerRun]:
    """A pass started and paused (see PausingFileSystem); released (and joined) on exit."""
    run = CleanerRun(log, now_ms)
    try:
        assert fs.paused.wait(TIMEOUT), "the cleaner never reached its pause"
        yield run
    finally:
        fs.release()
        run._thread.join(TIMEOUT)


def fill(log: Log, n: int, keys: int = 7, start: int = 0) -> list[tuple[int, bytes, bytes | None]]:
    history: list[tuple[int, bytes, bytes | None]] = []
    for i in range(start, start + n):
        key = b"k%d" % (i % keys)
        value = b"v%d" % i
        info = log.append(batch([(key, value)]), 0)
        history.append((info.first_offset, key, value))
    log.high_watermark = log.log_end_offset
    return history


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".cleaned", ".swap")))


def assert_compacted_from(log: Log, history: list[tuple[int, bytes, bytes | None]]) -> None:
    """Every record in the log is one of ``history`` at its offset, offsets increase, and each
    key's latest record in ``history`` at or above the log start is there."""
    got = all_records(log)
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(set(offsets))
    by_offset = {o: (k, v) for o, k, v in history}
    for o, k, v in got:
        assert by_offset.get(o) == (k, v), (o, k, v)
    live = [h for h in history if h[0] >= log.log_start_offset]
    for k, (o, v) in latest(live).items():
        assert (o, k, v) in got


def test_appends_and_reads_go_on_while_a_pass_is_paused(open_log: OpenLog, clock: ManualClock) -> None:
    fs = PausingFileSystem()
    log = open_log(NO_DELAY, fs=fs)
    history = fill(log, 120)
    active_base = log.active_segment.base_offset
    with log.read(0, 1 << 20) as before:
        assert before.slice is not None
        expected_first_read = before.slice.read()
    with paused_pass(log, fs, clock.milliseconds()) as run:
        more = within_timeout(lambda: fill(log, 30, start=120))
        old_read = within_timeout(lambda: log.read(0, 1 << 20))
        fs.release()
        stats = run.result()
    assert stats is not None and stats.end_offset == active_base
    # The read served from the old first segment still reads its bytes after the swap deleted it.
    with old_read:
        assert old_read.slice is not None and old_read.slice.read() == expected_first_read
    assert (log.directory / "00000000000000000000.log.deleted").exists() is False
    assert_compacted_from(log, history + more)
    cleaned = [r for r in all_records(log) if r[0] < active_base]
    assert len(cleaned) <= 7  # one record per key below the map end
    assert [r for r in all_records(log) if r[0] >= 120] == more
    assert leftovers(log.directory) == []


def test_a_second_pass_on_the_same_log_does_not_start(open_log: OpenLog, clock: ManualClock) -> None:
    fs = PausingFileSystem()
    log = open_log(NO_DELAY, fs=fs)
    history = fill(log, 120)
    with paused_pass(log, fs, clock.milliseconds()) as run:
        assert within_timeout(lambda: Cleaner().clean(log, clock.milliseconds(), force=True)) is None
        fs.release()
        assert run.result() is not None
    assert_compacted_from(log, history)
    assert leftovers(log.directory) == []


@pytest.mark.parametrize("where", ["first segment", "above the first group"])
def test_truncation_during_a_pass_aborts_it(open_log: OpenLog, clock: ManualClock, where: str) -> None:
    fs = PausingFileSystem()
    log = open_log(NO_DELAY, fs=fs)
    history = fill(log, 120)
    segments = log.segments()
    # Into the first group's segment, or above it: the latest values that made the first group
    # drop its records are truncated away, so its cleaned copy must not be swapped in.
    offset = 3 if where == "first segment" else segments[len(segments) // 2].base_offset
    with paused_pass(log, fs, clock.milliseconds()) as run:
        within_timeout(lambda: log.truncate_to(offset))
        fs.release()
        assert run.result() is None
    assert all_records(log) == [h for h in history if h[0] < offset]
    assert leftovers(log.directory) == []
    more = fill(log, 20, start=500)
    assert Cleaner().clean(log, clock.milliseconds(), force=True) is not None
    assert_compacted_from(log, [h for h in history if h[0] < offset] + more)


@pytest.mark.parametrize("how", ["delete records", "retention"])
def test_segment_deletion_during_a_pass_aborts_it(open_log: OpenLog, clock: ManualClock, how: str) -> None:
    fs = PausingFileSystem()
    log = open_log(NO_DELAY, fs=fs)
    history = fill(log, 120)
    second = log.segments()[1].base_offset
    with paused_pass(log, fs, clock.milliseconds()) as run:
        if how == "delete records":
            within_timeout(lambda: log.delete_records_before(second))
        else:
            within_timeout(lambda: log.delete_old_segments(lambda seg, nxt: seg.base_offset < second))
        fs.release()
        assert run.result() is None
    assert log.log_start_offset == second
    assert all_records(log) == [h for h in history if h[0] >= second]
    assert leftovers(log.directory) == []


def test_segments_unlinked_before_the_pass_reads_them_abort_it(open_log: OpenLog, clock: ManualClock) -> None:
    """Paused in its first read of the offset-map phase, the pass finds the next segments
    deleted (and unlinked: file.delete.delay.ms=0) when it comes to open them."""
    logs: list[Log] = []
    fs = PausingFileSystem("pread", logs)
    log = open_log(NO_DELAY, fs=fs)
    logs.append(log)
    history = fill(log, 120)
    third = log.segments()[2].base_offset
    with paused_pass(log, fs, clock.milliseconds()) as run:
        within_timeout(lambda: log.delete_records_before(third))
        fs.release()
        assert run.result() is None
    assert all_records(log) == [h for h in history if h[0] >= third]
    assert leftovers(log.directory) == []


def test_truncation_after_the_last_swap_keeps_the_cleaner_checkpoint_within_the_log(
    open_log: OpenLog, clock: ManualClock
) -> None:
    """Paused after its only swap (at the directory fsync made outside the lock), the pass sees
    the log truncated below the end of its offset map: its checkpoint must not pass the log end."""
    logs: list[Log] = []
    fs = PausingFileSystem("fsync_dir", logs)
    log = open_log(NO_DELAY, fs=fs)
    logs.append(log)
    history = fill(log, 10)
    assert log.segment_count == 2
    with paused_pass(log, fs, clock.milliseconds()) as run:
        within_timeout(lambda: log.truncate_to(2))
        fs.release()
        stats = run.result()
    assert stats is not None
    assert log.cleaner_checkpoint <= log.log_end_offset == 2
    # (Truncating below the high watermark, as here, undoes what compaction relied on; Kafka's
    # cleaner relies on it as much: only the checkpoint is checked.)
    assert set(all_records(log)) <= set(history[:2])


def test_close_during_a_pass_aborts_it_and_the_log_reloads(tmp_path: Path, clock: ManualClock) -> None:
    fs = PausingFileSystem()
    log = Log.open(tmp_path / "t-0", NO_DELAY, clock=clock, fs=fs)
    history = fill(log, 120)
    with paused_pass(log, fs, clock.milliseconds()) as run:
        within_timeout(log.close)
        fs.release()
        assert run.result() is None
    assert leftovers(log.directory) == []
    reopened = Log.open(tmp_path / "t-0", NO_DELAY, clock=clock)
    assert all_records(reopened) == history
    reopened.close()


def test_deleting_the_log_during_a_pass_aborts_it(tmp_path: Path, clock: ManualClock) -> None:
    fs = PausingFileSystem()
    manager = LogManager([tmp_path], NO_DELAY, clock, fs=fs)
    log = manager.get_or_create_log("t", 0)
    fill(log, 120)
    with paused_pass(log, fs, clock.milliseconds()) as run:
        assert within_timeout(lambda: manager.delete_log("t", 0))
        fs.release()
        assert run.result() is None
    manager.deleter.purge(everything=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("t-0")] == []
    manager.close()


@pytest.mark.parametrize("failing", [1, 2])
def test_a_failed_directory_fsync_in_the_swap(tmp_path: Path, clock: ManualClock, failing: int) -> None:
    """A disk error (the broker lives on) at the swap's first directory fsync, before it takes
    effect: no ``.swap`` file may stay behind, since the next load would complete it over the log
    as it is by then. At the second, after it took effect: the new segment must stay."""

    class FailingDirSync(FileSystem):
        calls = 0

        def fsync_dir(self, path: Path) -> None:
            if threading.current_thread().name == CLEANER_THREAD:
                self.calls += 1
                if self.calls == failing:
                    raise OSError(5, "Input/output error")
            super().fsync_dir(path)

    log = Log.open(tmp_path / "t-0", NO_DELAY, clock=clock, fs=FailingDirSync())
    history = fill(log, 120)
    run = CleanerRun(log, clock.milliseconds())
    with pytest.raises(OSError):
        run.result()
    assert leftovers(log.directory) == []
    assert_compacted_from(log, history)
    if failing == 1:
        log.truncate_to(50)
        history = history[:50]
        assert all_records(log) == history
    expected = all_records(log)
    log.close()
    reopened = Log.open(tmp_path / "t-0", NO_DELAY, clock=clock)
    assert all_records(reopened) == expected
    reopened.close()


def _clean_with_a_kill_at(point: int, directory: Path, clock: ManualClock) -> bool:
    """Clean a fresh log, dying at the ``point``-th rename, unlink or fsync; check the
    reloaded log. Returns whether the kill happened (False: the pass had fewer steps)."""
    fs = CrashingFileSystem()
    manager = LogManager([directory], COMPACT, clock, fs=fs)
    log = manager.get_or_create_log("c", 0)
    history = fill(log, 90, keys=5)
    log.flush()
    manager.checkpoint()
    calls = [0]

    def crash_at(original: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            if calls[0] == point:
                fs.crashed = True
                raise SimulatedCrash()
            calls[0] += 1
            original(*args)

        return call

    fs.replace = crash_at(fs.replace)  # type: ignore[method-assign]
    fs.unlink = crash_at(fs.unlink)  # type: ignore[method-assign]
    fs.fsync_dir = crash_at(fs.fsync_dir)  # type: ignore[method-assign]
    fs.fsync = crash_at(fs.fsync)  # type: ignore[method-assign]
    crashed = False
    try:
        manager.run_cleaner_once()
    except SimulatedCrash:
        crashed = True
    again = LogManager([directory], COMPACT, clock)
    reloaded = again.get_log("c", 0)
    assert reloaded is not None, again.offline
    assert_compacted_from(reloaded, history)
    assert all_records(reloaded)[-1] == history[-1]
    assert leftovers(directory / "c-0") == []
    again.close()
    return crashed


def test_a_kill_at_any_step_of_the_swaps_leaves_a_loadable_log(tmp_path: Path, clock: ManualClock) -> None:
    """Kill at the n-th rename, unlink or fsync of a pass, for every n until the pass
    completes: ``.cleaned`` and ``.swap`` files as a kill leaves them are rolled back or completed
    at load, and the log is always a correct compaction of what was written (or that itself)."""
    point = 0
    while _clean_with_a_kill_at(point, tmp_path / f"run{point}", clock):
        point += 1
    assert point > 10  # several groups were swapped, each several steps


# -- a model test: random work on the log while a pass is paused ---------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("roll"), st.just(0), st.just(False)),
        st.tuples(st.just("truncate"), st.integers(0, 200), st.just(False)),
        st.tuples(st.just("delete_records"), st.integers(0, 200), st.just(False)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    initial=st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=20, max_size=90),
    ops=_OPS,
)
def test_model_work_during_a_paused_pass(
    clock: ManualClock, initial: list[tuple[int, bool]], ops: list[tuple[str, int, bool]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fs = PausingFileSystem()
        log = Log.open(Path(tmp) / "m-0", NO_DELAY, clock=clock, fs=fs)
        history: list[tuple[int, bytes, bytes | None]] = []

        def append(key: int, tombstone: bool) -> None:
            value = None if tombstone else b"v%d" % len(history)
            info = log.append(batch([(b"k%d" % key, value)]), 0)
            history.append((info.first_offset, b"k%d" % key, value))
            log.high_watermark = log.log_end_offset

        for key, tombstone in initial:
            append(key, tombstone)
        if log.segment_count < 2:
            log.roll()
        destructive = False
        with paused_pass(log, fs, clock.milliseconds()) as run:
            for op, arg, flag in ops:
                if op == "append":
                    within_timeout(partial(append, arg, flag))
                elif op == "roll":
                    within_timeout(log.roll)
                elif op == "truncate" and arg < log.log_end_offset:
                    within_timeout(partial(log.truncate_to, max(arg, log.log_start_offset)))
                    history[:] = [h for h in history if h[0] < log.log_end_offset]
                    destructive = True
                elif op == "delete_records" and log.log_start_offset < arg <= log.high_watermark:
                    within_timeout(partial(log.delete_records_before, arg))
                    destructive = True
            fs.release()
            stats = run.result()
        assert stats is not None or destructive
        assert_compacted_from(log, history)
        assert leftovers(log.directory) == []
        log.close()
        reopened = Log.open(Path(tmp) / "m-0", NO_DELAY, clock=clock, had_clean_shutdown=True)
        assert_compacted_from(reopened, history)
        reopened.close()
