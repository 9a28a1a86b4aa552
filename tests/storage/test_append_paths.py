"""The single-batch append path (``Log._append_single_batch``) accepts exactly what the general
path accepts and leaves the same bytes on disk: the same appends go to two logs, one with the
shortcut switched off, and every result, segment, index and checkpoint file must be identical.
Both paths read the records (Kafka's LogValidator): batches with broken records, a header max
timestamp below the records', and (on a compacted topic) records without a key are part of it."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.clock import ManualClock
from storage.config import LogConfig
from storage.errors import StorageError
from storage.log import Log
from tests.storage.batches import make_batch

CONFIG = LogConfig(
    segment_bytes=900,
    index_interval_bytes=100,
    segment_index_bytes=64,
    segment_ms=5_000,
    max_message_bytes=400,
)
COMPACT = dataclasses.replace(CONFIG, cleanup_policy="compact")

# One append: batches as (records, value size, timestamp step or None for no timestamp,
# corruption, keyed), and the leader epoch.
batch_spec = st.tuples(
    st.integers(1, 4),
    st.integers(0, 120),
    st.one_of(st.none(), st.integers(-2_000, 3_000)),
    st.sampled_from(
        ["", "", "", "crc", "count", "delta", "empty", "magic", "length", "lowmax", "record", "extra"]
    ),
    st.booleans(),
)
append_spec = st.tuples(st.lists(batch_spec, min_size=1, max_size=3), st.integers(-1, 4))


def build(spec: list[tuple[int, int, int | None, str, bool]], now: int) -> bytearray:
    buf = bytearray()
    for records, value_size, step, corruption, keyed in spec:
        rows = [(b"k%d" % i if keyed else None, bytes(value_size)) for i in range(records)]
        if step is None:
            b = make_batch(rows, timestamps=[-1] * records)
        else:
            b = make_batch(
                rows, base_timestamp=now + step, timestamps=[now + step + i for i in range(records)]
            )
        if corruption == "crc":
            b[-1] ^= 0xFF
        elif corruption == "count":
            b[57:61] = (records + 1).to_bytes(4, "big")
        elif corruption == "delta":
            b[23:27] = (-1).to_bytes(4, "big", signed=True)
        elif corruption == "empty":  # no records: last offset delta -1 and a count of 0
            b[23:27] = (-1).to_bytes(4, "big", signed=True)
            b[57:61] = bytes(4)
        elif corruption == "magic":
            b[16] = 1
        elif corruption == "length":
            b[8:12] = (len(b) - 12 + 5).to_bytes(4, "big")
        elif corruption == "lowmax":  # sarama 1.22: the header's max timestamp is the first record's
            b[35:43] = b[27:35]
        elif corruption == "record":  # the first record's length varint: -64
            b[61] = 0x7F
        elif corruption == "extra":  # bytes after the last record
            b += b"\x00"
            b[8:12] = (len(b) - 12).to_bytes(4, "big")
        if corruption not in ("", "crc"):  # a valid CRC, so that the field check itself is tested
            b[17:21] = crc32c.crc32c(b[21:]).to_bytes(4, "big")
        buf += b
    return buf


def outcome(log: Log, data: bytearray, epoch: int) -> tuple[object, bytes]:
    try:
        result: object = log.append(data, epoch)
    except StorageError as exc:
        result = (type(exc), str(exc))
    return result, bytes(data)


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.parametrize("config", [CONFIG, COMPACT], ids=["delete", "compact"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(appends=st.lists(append_spec, min_size=1, max_size=25))
def test_single_batch_path_matches_the_general_path(
    config: LogConfig, appends: list[tuple[list[tuple[int, int, int | None, str, bool]], int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clock = ManualClock(1_700_000_000_000)
        fast = Log.open(root / "fast" / "t-0", config, clock=clock)
        general = Log.open(root / "general" / "t-0", config, clock=clock)
        general._fast_append = False
        for spec, epoch in appends:
            epoch = max(epoch, fast.leader_epochs.latest_epoch or -1) if epoch >= 0 else epoch
            data = build(spec, clock.now_ms)
            assert outcome(fast, bytearray(data), epoch) == outcome(general, bytearray(data), epoch)
            clock.advance(700)
        assert fast.log_end_offset == general.log_end_offset
        assert fast.segment_count == general.segment_count
        fast.close()
        general.close()
        assert files(root / "fast" / "t-0") == files(root / "general" / "t-0")


def test_single_batch_path_is_the_one_taken() -> None:
    # Guard for the test above: with the shortcut on, a lone valid batch must not reach the
    # general path (else the comparison would compare the general path with itself).
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.open(Path(tmp) / "t-0", CONFIG, clock=ManualClock(1_700_000_000_000))
        log._append_locked = None  # type: ignore[assignment,method-assign]
        log.append(make_batch(2), 0)
        assert log.log_end_offset == 2
        low = make_batch(2, timestamps=[1_700_000_000_000, 1_700_000_000_009])
        low[35:43] = low[27:35]  # header max timestamp below the second record's
        low[17:21] = crc32c.crc32c(low[21:]).to_bytes(4, "big")
        assert log.append(low, 0).max_timestamp == 1_700_000_000_009  # rewritten by the fast path
        with pytest.raises(TypeError):  # two batches: the general path, here removed
            log.append(make_batch(1) + make_batch(1), 0)
        log.close()
