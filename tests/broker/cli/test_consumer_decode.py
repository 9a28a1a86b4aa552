"""The console consumer's decoding of a fetched partition: positions, control batches and, under
read_committed, the records of aborted transactions left out (Kafka's fetcher semantics)."""

from __future__ import annotations

from typing import Any, cast

from broker.cli.console_consumer import SimpleConsumer
from broker.cli.offsets import READ_COMMITTED, READ_UNCOMMITTED
from protocol.records.record import ABORT, COMMIT, Record, build_batch, build_control_batch

TP = ("t", 0)


def _data(*values: bytes, base: int, pid: int = -1, txn: bool = False) -> bytes:
    records = [Record(i, i, None, v) for i, v in enumerate(values)]
    return build_batch(
        records,
        base_offset=base,
        base_timestamp=1000,
        producer_id=pid,
        producer_epoch=0 if txn else -1,
        base_sequence=0 if pid >= 0 else -1,
        transactional=txn,
    )


def _marker(kind: int, pid: int, base: int) -> bytes:
    return build_control_batch(
        kind, coordinator_epoch=0, producer_id=pid, producer_epoch=0, timestamp=1, base_offset=base
    )


def _consumer(isolation: int, position: int = 0) -> SimpleConsumer:
    consumer = SimpleConsumer(cast(Any, None), "t", isolation=isolation, group=None)
    consumer.positions = {TP: position}
    return consumer


# offsets: 0-1 plain, 2-3 txn pid 7 (aborted), 4 abort marker, 5 txn pid 8, 6 commit marker, 7 plain
LOG = (
    _data(b"a", b"b", base=0)
    + _data(b"x", b"y", base=2, pid=7, txn=True)
    + _marker(ABORT, 7, 4)
    + _data(b"c", base=5, pid=8, txn=True)
    + _marker(COMMIT, 8, 6)
    + _data(b"d", base=7)
)


def test_read_uncommitted_returns_every_data_record_and_skips_markers() -> None:
    consumer = _consumer(READ_UNCOMMITTED)
    records = consumer._decode(TP, LOG, [])
    assert [(r["offset"], r["value"]) for r in records] == [
        (0, b"a"),
        (1, b"b"),
        (2, b"x"),
        (3, b"y"),
        (5, b"c"),
        (7, b"d"),
    ]
    assert [r["timestamp"] for r in records[:2]] == [1000, 1001]
    assert consumer.positions[TP] == 8


def test_read_committed_leaves_out_aborted_transactions() -> None:
    consumer = _consumer(READ_COMMITTED)
    records = consumer._decode(TP, LOG, [(2, 7)])
    assert [r["value"] for r in records] == [b"a", b"b", b"c", b"d"]
    assert consumer.positions[TP] == 8


def test_records_before_the_position_are_not_returned_again() -> None:
    consumer = _consumer(READ_UNCOMMITTED, position=1)
    assert [r["offset"] for r in consumer._decode(TP, LOG, [])] == [1, 2, 3, 5, 7]
    partial = LOG[: len(LOG) - 5]  # a fetch may end inside a batch: that batch comes next time
    consumer = _consumer(READ_UNCOMMITTED)
    assert [r["offset"] for r in consumer._decode(TP, partial, [])] == [0, 1, 2, 3, 5]
    assert consumer.positions[TP] == 7


# -- positions across a group rebalance ---------------------------------------------------------


class _Member:
    group = "g"
    coordinator = None


class _Client:
    def retrying(self, call: Any) -> Any:
        return call()


def test_a_rejoin_keeps_the_positions_of_the_partitions_kept(monkeypatch: Any) -> None:
    """After a rebalance the partitions still assigned go on from where they were; only a new
    one is looked up (committed offset, else the reset policy): looking a kept one up again with
    ``latest`` would skip what was written since (a flaky ``console-consumer --group`` test)."""
    import broker.cli.console_consumer as module

    looked_up: list[list[tuple[str, int]]] = []

    def fetch_committed(_conn: Any, _group: str, partitions: list[tuple[str, int]]) -> dict[Any, int]:
        looked_up.append(list(partitions))
        return {}

    def list_offsets(_client: Any, partitions: list[tuple[str, int]], *_: Any) -> dict[Any, int]:
        return dict.fromkeys(partitions, 100)  # "latest": everything written so far

    monkeypatch.setattr(module, "fetch_committed", fetch_committed)
    monkeypatch.setattr(module, "list_offsets", list_offsets)
    consumer = SimpleConsumer(cast(Any, _Client()), "t", isolation=READ_UNCOMMITTED, group="g")
    consumer.member = cast(Any, _Member())
    consumer._start([("t", 0)])
    assert consumer.positions == {("t", 0): 100}
    consumer.positions[("t", 0)] = 7  # fetched up to 7, printed up to 5
    consumer.consumed[("t", 0)] = 5
    consumer._start([("t", 0), ("t", 1)])  # the rebalance adds partition 1
    assert consumer.positions == {("t", 0): 7, ("t", 1): 100}
    assert consumer.consumed == {("t", 0): 5, ("t", 1): 100}
    assert looked_up == [[("t", 0)], [("t", 1)]]
    consumer._start([("t", 1)])  # and takes partition 0 away
    assert consumer.positions == {("t", 1): 100}
    assert consumer.consumed == {("t", 1): 100}
