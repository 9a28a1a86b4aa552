"""ISR changes sent to the controller with AlterPartition (api 56), as Kafka's
``DefaultAlterPartitionManager`` over its ``BrokerToControllerChannelManager``.

Partitions submit a proposed ISR (:class:`~broker.replica.isr.PendingIsrChange`); changes that
arrive while a request is in flight wait and go together in the next one: one AlterPartition in
flight at a time. The controller is the one the metadata cache names, reached on the
inter-broker listener through a :class:`~broker.network.client.NetworkClient`; it is looked up
again for every request, so a NOT_CONTROLLER answer, a lost connection or no known controller
means: wait ``retry_backoff_ms`` and send again to whoever is the controller then (Kafka's
channel manager re-resolves the controller the same way). A partition missing from an answer is
sent again; per-partition errors and answers complete the submitter's future.

Versions: v2+ names topics by id; when a change has no topic id, the request goes in v0-1 (by
name), as Kafka's ``canUseTopicIds``. ZooKeeper mode sends broker epoch -1 for every ISR member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from broker.network.client import ClientClosedError, ClientError, NetworkClient
from broker.replica.isr import CommittedIsr, PendingIsrChange
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import (
    AlterPartitionRequest,
    BrokerState,
    PartitionData,
    TopicData,
)
from protocol.messages.alter_partition_response import AlterPartitionResponse
from protocol.primitives import ZERO_UUID
from storage.fast_dataclass import dataclass

log = logging.getLogger(__name__)

#: The highest AlterPartition version Brook sends (v3: ISR members with broker epochs).
MAX_VERSION = 3
API_KEY = 56
#: Kafka's LeaderRecoveryState.RECOVERED.
RECOVERED = 0

AlterPartitionResult = CommittedIsr | ErrorCode
#: The controller to talk to: (broker id, host, port), or None while none is known.
ControllerLookup = Callable[[], "tuple[BrokerId, str, int] | None"]


@dataclass(slots=True)
class _Item:
    tp: TopicPartition
    topic_id: uuid.UUID
    change: PendingIsrChange
    future: asyncio.Future[AlterPartitionResult]


class AlterPartitionManager:
    def __init__(
        self,
        local_id: BrokerId,
        controller: ControllerLookup,
        client: NetworkClient,
        *,
        broker_epoch: Callable[[], int] = lambda: -1,
        retry_backoff_ms: int = 50,
    ) -> None:
        self.local_id = local_id
        self._controller = controller
        self._client = client
        self._broker_epoch = broker_epoch
        self._backoff_s = retry_backoff_ms / 1000.0
        self._unsent: dict[TopicPartition, _Item] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: AlterPartition requests answered (a measure for tests and logs).
        self.requests_sent = 0

    def submit(
        self, tp: TopicPartition, topic_id: uuid.UUID, change: PendingIsrChange
    ) -> asyncio.Future[AlterPartitionResult]:
        """Queue ``change``; the future gets the controller's state or its error for ``tp``.
        A partition whose previous change is still unanswered gets OPERATION_NOT_ATTEMPTED."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AlterPartitionResult] = loop.create_future()
        if tp in self._unsent:
            future.set_result(ErrorCode.OPERATION_NOT_ATTEMPTED)
            return future
        self._unsent[tp] = _Item(tp, topic_id, change, future)
        if self._task is None:
            self._task = loop.create_task(self._run(), name="brook-alter-partition")
        self._wakeup.set()
        return future

    @property
    def pending(self) -> int:
        return len(self._unsent)

    async def close(self) -> None:
        """Stop sending and close the client; unanswered submissions are cancelled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for item in self._unsent.values():
            item.future.cancel()
        self._unsent.clear()
        await self._client.close()

    async def _run(self) -> None:
        while True:
            if not self._unsent:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            target = self._controller()
            if target is None:
                log.debug(
                    "No controller known for AlterPartition; retrying in %.0f ms", self._backoff_s * 1e3
                )
                await asyncio.sleep(self._backoff_s)
                continue
            items = list(self._unsent.values())
            by_id = all(item.topic_id != ZERO_UUID for item in items)
            controller_id, host, port = target
            try:
                conn = await self._client.connect(controller_id, host, port)
                version = conn.choose_version(API_KEY, max_version=MAX_VERSION if by_id else 1)
                response = await conn.request(self._request(items, version), version=version)
            except ClientClosedError:
                return
            except ClientError as exc:
                log.info("AlterPartition to controller %d failed (%s); retrying", controller_id, exc)
                await asyncio.sleep(self._backoff_s)
                continue
            except Exception:
                # Never let the sender die: a bug here would freeze every ISR change.
                log.exception("AlterPartition to controller %d failed; retrying", controller_id)
                await asyncio.sleep(self._backoff_s)
                continue
            self.requests_sent += 1
            body: AlterPartitionResponse = response.body
            if body.error_code != ErrorCode.NONE:
                code = _error_code(body.error_code)
                if code == ErrorCode.NOT_CONTROLLER:
                    # Not (or no longer) the controller: ask the metadata cache again.
                    self._client.disconnect(controller_id)
                log.info("AlterPartition answered %s by broker %d; retrying", code.name, controller_id)
                await asyncio.sleep(self._backoff_s)
                continue
            if self._complete(items, body, response.version):
                await asyncio.sleep(self._backoff_s)  # some were left out: not in a tight loop

    def _request(self, items: list[_Item], version: int) -> AlterPartitionRequest:
        by_id = version >= 2
        topics: dict[str, TopicData] = {}
        for item in items:
            topic = topics.get(item.tp.topic)
            if topic is None:
                topic = topics[item.tp.topic] = TopicData(
                    item.tp.topic, item.topic_id if by_id else ZERO_UUID
                )
            change = item.change
            topic.partitions.append(
                PartitionData(
                    partition_index=item.tp.partition,
                    leader_epoch=change.leader_epoch,
                    new_isr=list(change.proposed_isr) if version < 3 else [],
                    new_isr_with_epochs=[BrokerState(r, -1) for r in change.proposed_isr]
                    if version >= 3
                    else [],
                    leader_recovery_state=RECOVERED,
                    partition_epoch=change.partition_epoch,
                )
            )
        return AlterPartitionRequest(
            broker_id=self.local_id, broker_epoch=self._broker_epoch(), topics=list(topics.values())
        )

    def _complete(self, items: list[_Item], body: AlterPartitionResponse, version: int) -> bool:
        """Complete the answered items; True when some were left out of the answer."""
        names = {item.topic_id: item.tp.topic for item in items}
        answers: dict[TopicPartition, AlterPartitionResult] = {}
        for topic in body.topics:
            name = names.get(topic.topic_id) if version >= 2 else topic.topic_name
            if not name:
                log.error("AlterPartition answer names an unexpected topic %s; ignored", topic)
                continue
            for p in topic.partitions:
                tp = TopicPartition(name, p.partition_index)
                if p.error_code != ErrorCode.NONE:
                    answers[tp] = _error_code(p.error_code)
                else:
                    answers[tp] = CommittedIsr(
                        BrokerId(p.leader_id),
                        p.leader_epoch,
                        tuple(BrokerId(r) for r in p.isr),
                        p.partition_epoch,
                    )
        left_out = False
        for item in items:
            answer = answers.get(item.tp)
            if answer is None:
                log.warning("AlterPartition answer left out %s; sending it again", item.tp)
                left_out = True
                continue
            if self._unsent.get(item.tp) is item:
                del self._unsent[item.tp]
            if not item.future.done():
                item.future.set_result(answer)
        return left_out


def _error_code(value: int) -> ErrorCode:
    """A peer's error code; one this broker does not know counts as UNKNOWN_SERVER_ERROR."""
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.UNKNOWN_SERVER_ERROR
