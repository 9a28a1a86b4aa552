"""Moving a log to another log dir (AlterReplicaLogDirs' storage side): the future log, the
bounded copy steps, the swap, and restarts in the middle of a move."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.log import Log
from storage.log_mover import copy_step
from storage.manager import LogManager
from tests.storage.batches import batch_of_size, make_batch

CONFIG = LogConfig(segment_bytes=1000)


def all_bytes(log: Log) -> bytes:
    """Every batch of the log from its start, across segments."""
    out = bytearray()
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        with log.read(offset, 1 << 20) as result:
            assert result.slice is not None
            out += result.slice.read()
            offset = result.next_offset  # type: ignore[attr-defined]
    return bytes(out)


def two_dirs(tmp: Path) -> tuple[LogManager, Path, Path]:
    a, b = tmp / "a", tmp / "b"
    manager = LogManager([a, b], CONFIG, ManualClock(1_700_000_000_000))
    return manager, a, b


def finish(manager: LogManager, step_bytes: int = 300) -> Log:
    current = manager.get_log("t", 0)
    future = manager.future_log("t", 0)
    assert current is not None and future is not None
    for _ in range(10_000):
        if copy_step(current, future, step_bytes).lag == 0:
            swapped = manager.replace_current_with_future("t", 0)
            if swapped is not None:
                return swapped
    raise AssertionError("the copy never caught up")


def test_a_move_while_appending_ends_in_the_other_dir_with_every_batch(tmp_path: Path) -> None:
    manager, a, b = two_dirs(tmp_path)
    manager.preferred_dirs[("t", 0)] = a
    current = manager.get_or_create_log("t", 0)
    assert current.directory == a / "t-0"
    for _ in range(20):
        current.append(batch_of_size(100), 3)
    future = manager.create_future_log("t", 0, b)
    assert future.directory.parent == b and future.directory.name.endswith("-future")
    assert future.directory.name.startswith("t-0.")
    for i in range(200):  # the producer goes on between the steps
        if i % 3 == 0:
            current.append(batch_of_size(100), 3)
        if copy_step(current, future, 250).lag == 0 and i > 100:
            break
    current.high_watermark = current.log_end_offset
    expected = all_bytes(current)
    new = finish(manager)
    assert new.directory == b / "t-0" and manager.log_dir_of("t", 0) == b
    assert manager.get_log("t", 0) is new and manager.future_log("t", 0) is None
    assert all_bytes(new) == expected
    assert new.high_watermark == new.log_end_offset
    assert [e.epoch for e in new.leader_epochs.entries()] == [3]
    assert not (a / "t-0").exists()
    assert [p.name.endswith("-delete") for p in a.iterdir() if p.is_dir()] == [True]
    new.append(batch_of_size(100), 3)  # it goes on as the partition's log
    manager.close()
    assert not any(p.is_dir() for p in a.iterdir())  # the old directory is gone
    again = LogManager([a, b], CONFIG, ManualClock(1_700_000_000_000))
    reloaded = again.get_log("t", 0)
    assert reloaded is not None and reloaded.directory == b / "t-0"
    assert all_bytes(reloaded)[: len(expected)] == expected
    again.close()


def test_the_future_is_truncated_when_the_current_log_is(tmp_path: Path) -> None:
    manager, a, b = two_dirs(tmp_path)
    manager.preferred_dirs[("t", 0)] = a
    current = manager.get_or_create_log("t", 0)
    for i in range(30):
        current.append_as_follower(make_batch(1, base_offset=i, partition_leader_epoch=1))
    future = manager.create_future_log("t", 0, b)
    while copy_step(current, future, 10_000).lag:
        pass
    assert future.log_end_offset == 30
    # A new leader: this replica truncates to 20, then gets the new epoch's batches.
    current.truncate_to(20)
    for i in range(20, 25):
        current.append_as_follower(make_batch(1, base_offset=i, partition_leader_epoch=2))
    step = copy_step(current, future, 10_000)
    assert step.truncated
    current.high_watermark = 25
    expected = all_bytes(current)
    new = finish(manager)
    assert all_bytes(new) == expected
    assert new.log_end_offset == 25
    assert [(e.epoch, e.start_offset) for e in new.leader_epochs.entries()] == [(1, 0), (2, 20)]
    manager.close()


def test_the_future_follows_the_log_start(tmp_path: Path) -> None:
    manager, a, b = two_dirs(tmp_path)
    manager.preferred_dirs[("t", 0)] = a
    current = manager.get_or_create_log("t", 0)
    for _ in range(40):
        current.append(batch_of_size(100), 1)
    current.high_watermark = 40
    future = manager.create_future_log("t", 0, b)
    copy_step(current, future, 300)
    current.delete_records_before(25)  # past the future's end
    copy_step(current, future, 300)
    assert future.log_start_offset == 25
    new = finish(manager)
    assert (new.log_start_offset, new.log_end_offset) == (25, 40)
    manager.close()


def test_a_move_survives_a_crash_and_resumes(tmp_path: Path) -> None:
    manager, a, b = two_dirs(tmp_path)
    manager.preferred_dirs[("t", 0)] = a
    current = manager.get_or_create_log("t", 0)
    for _ in range(30):
        current.append(batch_of_size(100), 2)
    current.high_watermark = 30
    expected = all_bytes(current)
    future = manager.create_future_log("t", 0, b)
    for _ in range(4):
        copy_step(current, future, 300)
    assert 0 < future.log_end_offset < 30
    manager.checkpoint()
    manager.abandon()  # kill -9: nothing more written

    again = LogManager([a, b], CONFIG, ManualClock(1_700_000_000_000))
    resumed = again.future_log("t", 0)
    assert resumed is not None and again.future_dir_of("t", 0) == b
    assert 0 < resumed.log_end_offset <= 30
    new = finish(again)
    assert all_bytes(new) == expected and new.directory == b / "t-0"
    again.close()


def test_a_crash_between_the_renames_of_a_swap_is_completed_at_start(tmp_path: Path) -> None:
    manager, a, b = two_dirs(tmp_path)
    manager.preferred_dirs[("t", 0)] = a
    current = manager.get_or_create_log("t", 0)
    for _ in range(12):
        current.append(batch_of_size(100), 2)
    expected = all_bytes(current)
    future = manager.create_future_log("t", 0, b)
    while copy_step(current, future, 10_000).lag:
        pass
    future_dir = future.directory
    manager.close()
    # What the swap does first: the current directory renamed for deletion; then the process dies.
    (a / "t-0").rename(a / "t-0.0123456789abcdef0123456789abcdef-delete")

    again = LogManager([a, b], CONFIG, ManualClock(1_700_000_000_000))
    log = again.get_log("t", 0)
    assert log is not None and log.directory == b / "t-0" and not future_dir.exists()
    assert again.future_log("t", 0) is None and all_bytes(log) == expected
    again.close()


def test_a_cancelled_move_deletes_the_future(tmp_path: Path) -> None:
    manager, a, b = two_dirs(tmp_path)
    manager.preferred_dirs[("t", 0)] = a
    current = manager.get_or_create_log("t", 0)
    current.append(batch_of_size(100), 0)
    future = manager.create_future_log("t", 0, b)
    copy_step(current, future)
    assert manager.remove_future_log("t", 0)
    manager.close()
    assert not any(p.is_dir() for p in b.iterdir())
    again = LogManager([a, b], CONFIG, ManualClock(1_700_000_000_000))
    assert again.future_log("t", 0) is None and again.log_dir_of("t", 0) == a
    again.close()


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 4)),
        st.tuples(st.just("step"), st.integers(1, 600)),
        st.tuples(st.just("new_leader"), st.integers(0, 8)),
        st.tuples(st.just("delete_records"), st.integers(0, 6)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_whatever_the_current_log_goes_through_the_moved_log_equals_it(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        manager, a, b = two_dirs(Path(tmp))
        manager.preferred_dirs[("t", 0)] = a
        current = manager.get_or_create_log("t", 0)
        future = manager.create_future_log("t", 0, b)
        epoch = 0
        for op, arg in ops:
            if op == "append":
                for _ in range(arg):
                    offset = current.log_end_offset
                    current.append_as_follower(
                        make_batch(2, base_offset=offset, partition_leader_epoch=epoch)
                    )
                current.high_watermark = current.log_end_offset - 1
            elif op == "step":
                copy_step(current, future, arg)
            elif op == "new_leader":
                epoch += 1
                current.truncate_to(max(current.log_end_offset - arg, current.high_watermark))
            else:
                target = min(current.log_start_offset + arg, current.high_watermark)
                current.delete_records_before(target)
        current.high_watermark = current.log_end_offset
        expected = (current.log_start_offset, current.log_end_offset, all_bytes(current))
        epochs = [(e.epoch, e.start_offset) for e in current.leader_epochs.entries()]
        new = finish(manager, 500)
        assert (new.log_start_offset, new.log_end_offset, all_bytes(new)) == expected
        if expected[0] < expected[1]:
            # An empty log's epochs are not copied (a follower's, truncated fully, neither).
            assert [(e.epoch, e.start_offset) for e in new.leader_epochs.entries()] == epochs
        manager.close()
