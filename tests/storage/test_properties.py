"""Property test: random appends, rolls, truncations, retention runs, DeleteRecords and
reopenings (clean and unclean) against a simple model of which batches the log holds."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocol.records.batch import iter_batches
from storage.clock import ManualClock
from storage.config import LogConfig
from storage.log import Log
from storage.retention import delete_old_segments
from tests.storage.batches import make_batch

CONFIG = LogConfig(
    segment_bytes=700, index_interval_bytes=120, segment_index_bytes=96, retention_bytes=2500, retention_ms=-1
)


class LogMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.tmp = Path(tempfile.mkdtemp())
        self.clock = ManualClock(1_000_000)
        self.log = Log.open(self.tmp / "p-0", CONFIG, clock=self.clock)
        self.model: list[tuple[int, int, bytes]] = []  # (base, last, bytes) as stored
        self.leo = 0

    def teardown(self) -> None:
        if hasattr(self, "log"):
            self.log.mark_deleted()
            shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(
        sizes=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 150)), min_size=1, max_size=3),
        epoch=st.integers(0, 3),
    )
    def append(self, sizes: list[tuple[int, int]], epoch: int) -> None:
        epoch = max(epoch, self.log.leader_epochs.latest_epoch or 0)
        buf = bytearray()
        spans = []
        for n, value in sizes:
            b = make_batch(n, value_size=value, base_timestamp=self.clock.now_ms)
            spans.append((len(buf), len(b), n))
            buf += b
        info = self.log.append(buf, epoch)
        assert info.first_offset == self.leo
        offset = self.leo
        for pos, size, n in spans:
            self.model.append((offset, offset + n - 1, bytes(buf[pos : pos + size])))
            offset += n
        self.leo = offset
        self.clock.advance(10)

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(self.log.log_start_offset, self.leo))
        self.log.truncate_to(target)
        if target < self.leo:
            self.model = [b for b in self.model if b[1] < target]
            # A cut inside a batch removes it and ends the log at its base (see Log.truncate_to).
            self.leo = min(target, self.model[-1][1] + 1 if self.model else target)
            if not self.model:  # everything gone: the log ends at its (emptied) segment's base
                assert self.log.log_start_offset <= self.log.log_end_offset <= target
                self.leo = self.log.log_end_offset
            assert self.log.log_end_offset == self.leo

    @rule()
    def retention(self) -> None:
        self.log.high_watermark = self.leo
        delete_old_segments(self.log, self.clock.milliseconds())
        self._drop_below_first_segment()

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        self.log.high_watermark = self.leo
        target = data.draw(st.integers(self.log.log_start_offset, self.leo))
        self.log.delete_records_before(target)
        self._drop_below_first_segment()

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        start = self.log.log_start_offset
        if clean:
            self.log.close()
            rp = self.log.recovery_point
        else:
            rp = self.log.recovery_point
            self.log.mark_deleted()  # killed: nothing trimmed, no final index entries
        self.log = Log.open(
            self.tmp / "p-0",
            CONFIG,
            clock=self.clock,
            had_clean_shutdown=clean,
            recovery_point=rp,
            log_start_offset=start,
        )
        assert self.log.log_end_offset == self.leo

    @rule()
    def flush(self) -> None:
        self.log.flush()
        assert self.log.recovery_point == self.leo

    def _drop_below_first_segment(self) -> None:
        first = self.log.segments()[0].base_offset
        self.model = [b for b in self.model if b[0] >= first]

    @invariant()
    def bytes_and_offsets_match_the_model(self) -> None:
        if not hasattr(self, "log"):
            return
        log = self.log
        assert log.log_end_offset == self.leo
        stored = []
        prev_last = -1
        for seg in log.segments():
            data = seg.pread(seg.size, 0)
            batches = list(iter_batches(data))
            for pos, h in batches:
                assert h.base_offset > prev_last  # increasing; gaps only from truncation
                prev_last = h.last_offset
                stored.append((h.base_offset, h.last_offset, data[pos : pos + h.size]))
            starts = {pos: h for pos, h in batches}
            for off, pos in seg.offset_index.all_entries():  # every entry at a batch boundary
                assert pos in starts and starts[pos].last_offset == off
            for _, off in seg.time_index.all_entries():
                assert seg.base_offset <= off
        assert stored == self.model
        assert prev_last < self.leo

    @invariant()
    def read_returns_the_batch_holding_the_offset(self) -> None:
        if not hasattr(self, "log") or not self.model:
            return
        log = self.log
        probes = {log.log_start_offset, self.leo - 1, (log.log_start_offset + self.leo) // 2}
        for offset in probes:
            if not log.log_start_offset <= offset < self.leo:
                continue
            with log.read(offset, 1) as r:
                expected = next((b for b in self.model if b[1] >= offset), None)
                if expected is None:
                    assert r.slice is None
                    continue
                assert r.slice is not None
                got = r.slice.read()
                assert got == expected[2]

    @invariant()
    def tail_reads_match_scanned_reads(self) -> None:
        """Reads answered from the segments' recent-batch positions (``LogSegment._tail``) are
        the reads a header scan from the index gives: same bytes, same first and next offsets."""
        if not hasattr(self, "log") or not self.model:
            return
        log = self.log
        bases = [b[0] for b in self.model]
        # Batch bases (what fetches ask) and offsets inside batches (positions kept for batches
        # since truncated away must not answer those).
        bounds = {self.leo, bases[len(bases) // 2], bases[-1], bases[-1] + 1}
        for offset in sorted({*bases, *(base + 1 for base in bases)}):
            if not log.log_start_offset <= offset < self.leo:
                continue
            for max_bytes in (1, 150, 10**6):
                for bound in bounds:
                    with_tail = _read(log, offset, max_bytes, bound)
                    kept = [seg._tail.copy() for seg in log.segments()]
                    for seg in log.segments():
                        seg._tail.clear()
                    assert _read(log, offset, max_bytes, bound) == with_tail, (offset, max_bytes, bound)
                    for seg, tail in zip(log.segments(), kept, strict=True):
                        seg._tail.update(tail)


def _read(log: Log, offset: int, max_bytes: int, max_offset: int) -> tuple[bytes, int, int]:
    with log.read(offset, max_bytes, max_offset) as r:
        return (r.slice.read() if r.slice is not None else b"", r.first_offset, r.next_offset)


LogMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("STORAGE_PROPERTY_EXAMPLES", "25")),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLogProperties = LogMachine.TestCase
