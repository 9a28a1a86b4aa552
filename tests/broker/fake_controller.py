"""A stand-in for the active controller that answers AlterPartition (api 56) on 127.0.0.1.

It keeps each partition's state (leader, leader epoch, ISR, partition epoch: the partition state
znode of a ZooKeeper controller) and checks proposals with the controller's own
:func:`~broker.cluster.controller.alter_partition.validate_alter_partition`; an accepted one is
stored with the partition epoch bumped, as a znode write does. Tests can make it answer
NOT_CONTROLLER a number of times, or hold answers until released.
"""

from __future__ import annotations

import asyncio
import uuid

from broker.cluster.controller.alter_partition import validate_alter_partition
from broker.cluster.controller.context import LeaderAndIsr, LeaderRecoveryState
from broker.types import BrokerId, TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.alter_partition_request import AlterPartitionRequest
from protocol.messages.alter_partition_response import AlterPartitionResponse, PartitionData, TopicData
from tests.broker.fake_server import FakeConn, FakeServer

ALTER_PARTITION = 56


class FakeController:
    def __init__(self, live: list[int], topic_ids: dict[str, uuid.UUID]) -> None:
        self.live = [BrokerId(b) for b in live]
        self.topic_ids = topic_ids
        self.states: dict[TopicPartition, LeaderAndIsr] = {}
        #: Answer NOT_CONTROLLER to this many requests first.
        self.not_controller = 0
        #: Cleared: requests are read but not answered until it is set.
        self.open = asyncio.Event()
        self.open.set()
        self.requests: list[tuple[int, AlterPartitionRequest]] = []
        self.answered = asyncio.Condition()
        self.server = FakeServer(self._script)

    @property
    def port(self) -> int:
        return self.server.port

    def set_state(
        self, tp: TopicPartition, leader: int, leader_epoch: int, isr: list[int], epoch: int
    ) -> None:
        members = tuple(BrokerId(r) for r in isr)
        self.states[tp] = LeaderAndIsr(BrokerId(leader), leader_epoch, members, partition_epoch=epoch)

    async def __aenter__(self) -> FakeController:
        await self.server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()

    async def wait_requests(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self.answered:
            await self.answered.wait_for(lambda: len(self.requests) >= count)

    async def _script(self, conn: FakeConn) -> None:
        await conn.answer_api_versions()
        while True:
            request = await conn.read_request()
            assert request.api.api_key == ALTER_PARTITION, request
            await self.open.wait()
            body: AlterPartitionRequest = request.body
            if self.not_controller > 0:
                self.not_controller -= 1
                response = AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)
            else:
                response = self._answer(body, request.version)
            conn.answer(request, response)
            async with self.answered:
                self.requests.append((request.version, body))
                self.answered.notify_all()

    def _answer(self, body: AlterPartitionRequest, version: int) -> AlterPartitionResponse:
        names = {v: k for k, v in self.topic_ids.items()}
        topics: list[TopicData] = []
        for topic in body.topics:
            name = names[topic.topic_id] if version >= 2 else topic.topic_name
            out = TopicData(topic_name=topic.topic_name if version < 2 else "", topic_id=topic.topic_id)
            for p in topic.partitions:
                tp = TopicPartition(name, p.partition_index)
                isr = [b.broker_id for b in p.new_isr_with_epochs] if version >= 3 else list(p.new_isr)
                proposed = LeaderAndIsr(
                    BrokerId(body.broker_id),
                    p.leader_epoch,
                    tuple(BrokerId(r) for r in isr),
                    LeaderRecoveryState(p.leader_recovery_state),
                    p.partition_epoch,
                )
                current = self.states.get(tp)
                result = validate_alter_partition(tp, current, proposed, self.live, version)
                if isinstance(result, ErrorCode):
                    out.partitions.append(PartitionData(p.partition_index, error_code=result))
                    continue
                if result is None:
                    assert current is not None
                    result = proposed.with_partition_epoch(current.partition_epoch + 1)
                    self.states[tp] = result
                out.partitions.append(
                    PartitionData(
                        p.partition_index,
                        0,
                        result.leader,
                        result.leader_epoch,
                        list(result.isr),
                        result.leader_recovery_state.value,
                        result.partition_epoch,
                    )
                )
            topics.append(out)
        return AlterPartitionResponse(topics=topics)
