"""producer.id.expiration.ms: idle producers are forgotten every check interval, on the loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from protocol.messages.init_producer_id_request import InitProducerIdRequest
from storage.clock import ManualClock
from tests.broker.conftest import Caller, make_broker
from tests.broker.test_data_plane import batch, create, produce

NOW = 1_800_000_000_000


def test_idle_producer_is_forgotten_after_the_expiration(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d", **{"producer.id.expiration.ms": "60000"})
    clock = ManualClock(NOW)
    broker.clock = clock
    call = Caller(broker)
    try:
        create(call, "p")
        pid = call(InitProducerIdRequest(transactional_id=None), 1).producer_id
        first = produce(call, "p", 0, batch([b"a"], pid=pid, epoch=0, seq=0, ts=NOW))
        assert first.error_code == 0 and first.base_offset == 0

        clock.advance(59_999)
        assert broker.remove_expired_producers() == 0
        retry = produce(call, "p", 0, batch([b"a"], pid=pid, epoch=0, seq=0, ts=NOW))
        assert retry.base_offset == 0  # still known: the retry is a duplicate

        clock.advance(1)  # Kafka expires at now - last timestamp >= producer.id.expiration.ms
        assert broker.remove_expired_producers() == 1
        partition = broker.replica_manager.get(("p", 0))  # type: ignore[arg-type]
        assert partition is not None and pid not in partition.producers.producers
        again = produce(call, "p", 0, batch([b"a"], pid=pid, epoch=0, seq=0, ts=NOW))
        assert again.error_code == 0 and again.base_offset == 1  # unknown producer: appended anew
    finally:
        broker.log_manager.close()


def test_expiration_check_is_scheduled_on_the_event_loop(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "d")
    ran = []

    async def scenario() -> None:
        broker.loop = asyncio.get_running_loop()
        broker._stopping = asyncio.Event()
        fired = asyncio.Event()

        def work() -> None:
            ran.append(asyncio.get_running_loop())  # raises off the loop thread
            fired.set()

        broker._schedule_periodic()
        assert "remove_expired_producers" in broker._timers
        broker._every_on_loop(1, work)
        await asyncio.wait_for(fired.wait(), 10)
        broker._stopping.set()
        for timer in broker._timers.values():
            timer.cancel()

    try:
        asyncio.run(scenario())
        assert ran
    finally:
        broker.log_manager.close()
