"""Property test of the transaction coordinator against a model: random sequences of
InitProducerId, AddPartitionsToTxn (current or stale epoch), EndTxn, transaction timeouts and
coordinator reloads, through the handlers of an in-process broker (markers: the test double of
the WriteTxnMarkers seam). After every step the coordinator's state and every answer match what
Kafka's state machine gives, and the markers written are exactly the model's."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.txn.state import TxnState
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from tests.broker.test_txn_coordinator import Harness

E = ErrorCode
S = TxnState
IDS = ["a", "b"]


@dataclass
class Model:
    state: TxnState = S.EMPTY
    epoch: int = 0
    partitions: set[TopicPartition] = field(default_factory=set)


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("init"), st.sampled_from(IDS)),
        st.tuples(st.just("add"), st.sampled_from(IDS), st.integers(0, 1), st.booleans()),
        st.tuples(st.just("end"), st.sampled_from(IDS), st.booleans()),
        st.tuples(st.just("timeout")),
        st.tuples(st.just("reload")),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_the_coordinator_follows_kafkas_state_machine(steps: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp) / "data")
        try:
            asyncio.run(_play(h, steps))
        finally:
            h.close()


async def _play(h: Harness, steps: list[tuple[object, ...]]) -> None:
    await h.start()
    models: dict[str, Model] = {}
    pids: dict[str, int] = {}
    markers: list[tuple[TopicPartition, int, int, bool]] = []
    try:
        for step in steps:
            await _step(h, step, models, pids, markers)
            await h.idle()
            assert sorted(w[:4] for w in h.writer.written) == sorted(markers), step
            for tid, model in models.items():
                m = h.meta(tid)
                assert (m.state, m.producer_epoch, m.partitions, m.pending) == (
                    model.state,
                    model.epoch,
                    model.partitions,
                    False,
                ), step
    finally:
        await h.coordinator.stop()


def _abort(model: Model, pid: int, markers: list[tuple[TopicPartition, int, int, bool]]) -> None:
    """A fenced abort: the epoch is bumped, the markers carry it."""
    model.epoch += 1
    markers.extend((tp, pid, model.epoch, False) for tp in model.partitions)
    model.state, model.partitions = S.COMPLETE_ABORT, set()


async def _step(
    h: Harness,
    step: tuple[object, ...],
    models: dict[str, Model],
    pids: dict[str, int],
    markers: list[tuple[TopicPartition, int, int, bool]],
) -> None:
    kind = step[0]
    if kind == "init":
        tid = str(step[1])
        response = await h.init(tid)
        model = models.get(tid)
        if model is None:
            assert response.error_code == E.NONE
            models[tid], pids[tid] = Model(), response.producer_id
        elif model.state is S.ONGOING:
            assert response.error_code == E.CONCURRENT_TRANSACTIONS
            _abort(model, pids[tid], markers)
        else:
            assert (response.error_code, response.producer_id) == (E.NONE, pids[tid])
            model.epoch += 1
            model.state = S.EMPTY
        if tid in models and response.error_code == E.NONE:
            assert response.producer_epoch == models[tid].epoch
    elif kind == "add":
        tid, partition, stale = str(step[1]), int(step[2]), bool(step[3])  # type: ignore[call-overload]
        tp = TopicPartition("t", partition)
        model = models.get(tid)
        if model is None:
            assert await h.add(tid, 12345, 0, [tp]) == [E.INVALID_PRODUCER_ID_MAPPING]
        elif stale and model.epoch > 0:
            assert await h.add(tid, pids[tid], model.epoch - 1, [tp]) == [E.PRODUCER_FENCED]
        else:
            assert await h.add(tid, pids[tid], model.epoch, [tp]) == [E.NONE]
            model.state = S.ONGOING
            model.partitions.add(tp)
    elif kind == "end":
        tid, commit = str(step[1]), bool(step[2])
        model = models.get(tid)
        if model is None:
            assert await h.end(tid, 12345, 0, commit) == E.INVALID_PRODUCER_ID_MAPPING
            return
        error = await h.end(tid, pids[tid], model.epoch, commit)
        if model.state is S.ONGOING:
            assert error == E.NONE
            markers.extend((tp, pids[tid], model.epoch, commit) for tp in model.partitions)
            model.state, model.partitions = (S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT), set()
        elif model.state is (S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT):
            assert error == E.NONE
        else:
            assert error == E.INVALID_TXN_STATE
    elif kind == "timeout":
        h.scheduler.advance(71_000)  # the check runs every 10 s: one falls past the 60 s timeout
        await h.idle()
        for tid, model in models.items():
            if model.state is S.ONGOING:
                _abort(model, pids[tid], markers)
    else:
        await h.restart_coordinator()
