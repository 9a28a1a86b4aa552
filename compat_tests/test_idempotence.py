"""Idempotence: a producer whose responses are lost retries, and the log holds each message once.

The broker advertises a proxy's address, so every client connection goes through it. The proxy
forwards the produce request; the broker appends and answers; the proxy swallows that answer and
closes the connection. The producer cannot know the batch was written, so it sends it again on a
new connection with the same producer id and sequence numbers; the broker must acknowledge the
retry with the first offsets and not append it twice. The control test shows that the same loss
without idempotence does duplicate records, i.e. that the scenario really happens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.clients.drivers import ALL_DRIVERS, REFERENCE, Driver
from compat_tests.clients.logfiles import batches
from compat_tests.clients.model import Msg
from compat_tests.harness import BrokerProcess
from compat_tests.tcp_proxy import TcpProxy

PRODUCE = 0
INIT_PRODUCER_ID = 22


@dataclass
class Proxied:
    broker: BrokerProcess
    proxy: TcpProxy

    @property
    def bootstrap(self) -> str:
        return self.proxy.address


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    broker = BrokerProcess(tmp_path_factory.mktemp("idempotence") / "data")
    proxy = TcpProxy("127.0.0.1", broker.port, kafka_frames=True).start()
    broker.overrides["advertised.listeners"] = f"PLAINTEXT://{proxy.address}"
    broker.start()
    try:
        yield Proxied(broker, proxy)
    finally:
        proxy.close()
        broker.stop()
    assert broker.proc is not None and broker.proc.returncode == 0, broker.log_tail()


def _lose_and_check(
    proxied: Proxied, driver: Driver, idempotent: bool, lost: int
) -> tuple[str, list[Msg], Counter[bytes]]:
    """Produce 30 records while the first ``lost`` produce responses are lost; returns the
    topic, the records sent and how often each value is in the log."""
    topic = create_topic(proxied.bootstrap, unique_topic("idem"), partitions=1)
    msgs = [Msg(f"{driver.name}-{i}".encode(), key=f"k{i}".encode(), partition=0) for i in range(30)]
    dropped_before = proxied.proxy.stats.dropped[PRODUCE]
    proxied.proxy.drop_responses(PRODUCE, lost)
    try:
        driver.produce(proxied.bootstrap, topic, msgs, acks="all", idempotent=idempotent)
    finally:
        proxied.proxy.cancel_drops(PRODUCE)
    assert proxied.proxy.stats.dropped[PRODUCE] - dropped_before == lost, "the responses were not lost"
    records = REFERENCE.consume(proxied.bootstrap, topic, [0])
    return topic, msgs, Counter(r.value for r in records if r.value is not None)


@pytest.mark.parametrize("driver", [pytest.param(d, id=d.name) for d in ALL_DRIVERS])
def test_lost_produce_responses_do_not_duplicate(proxied: Proxied, driver: Driver) -> None:
    requests_before = proxied.proxy.stats.requests[PRODUCE]
    topic, msgs, seen = _lose_and_check(proxied, driver, idempotent=True, lost=2)
    assert proxied.proxy.stats.requests[PRODUCE] - requests_before >= 3, "the producer did not retry"
    assert seen == Counter(m.value for m in msgs), {v: n for v, n in seen.items() if n != 1}
    stored = batches(proxied.broker.data_dir / f"{topic}-0")
    assert sum(b.count for b in stored) == len(msgs), stored
    assert all(b.producer_id >= 0 for b in stored), "the client did not produce idempotently"
    assert proxied.broker.alive()


def test_without_idempotence_the_same_loss_duplicates(proxied: Proxied) -> None:
    """Control: the scenario above does make a producer resend what the broker had appended."""
    _, msgs, seen = _lose_and_check(proxied, REFERENCE, idempotent=False, lost=1)
    assert set(seen) == {m.value for m in msgs}
    assert any(n > 1 for n in seen.values()), "no record was written twice: the loss did not happen"
