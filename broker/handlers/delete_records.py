"""DeleteRecords (key 21), versions 0-2.

Moves each partition's log start offset up to the requested offset (-1 means the high
watermark), deleting whole segments below it; answers the new low watermark. An offset above
the high watermark is OFFSET_OUT_OF_RANGE, as in Kafka.

Authorization (an authorizer configured): DELETE on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from operator import methodcaller

from broker.handlers.base import Handler, RequestContext
from broker.security.authz import Op, checker
from protocol.error_codes import ErrorCode
from protocol.messages.delete_records_request import DeleteRecordsRequest
from protocol.messages.delete_records_response import (
    DeleteRecordsPartitionResult,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
)
from storage import LogDeletedError, StorageError

API_KEY = 21
HIGH_WATERMARK = -1


async def handle(ctx: RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse:
    broker = ctx.broker
    topics: list[DeleteRecordsTopicResult] = []
    may_delete = checker(ctx, Op.DELETE)
    for topic in request.topics:
        results: list[DeleteRecordsPartitionResult] = []
        authorized = may_delete(topic.name)
        for p in topic.partitions:
            out = DeleteRecordsPartitionResult(
                partition_index=p.partition_index, low_watermark=-1, error_code=0
            )
            if not authorized:
                out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                results.append(out)
                continue
            partition, out.error_code = broker.replica_manager.leader_for(topic.name, p.partition_index)
            if partition is not None:
                target = partition.high_watermark if p.offset == HIGH_WATERMARK else p.offset
                if target < 0 or target > partition.high_watermark:
                    out.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
                else:
                    try:
                        if target > partition.log_start_offset:
                            # Segment renames and the epoch checkpoint: in a disk worker.
                            advance = methodcaller("delete_records_before", target)
                            await broker.disk.run(partition.on_current_log, advance)
                        out.low_watermark = partition.log_start_offset
                    except LogDeletedError:  # the topic was deleted meanwhile
                        out.error_code = ErrorCode.NOT_LEADER_OR_FOLLOWER
                    except (StorageError, OSError) as exc:
                        action = "deleting records of"
                        out.error_code = broker.replica_manager.storage_failure(partition, exc, action)
            results.append(out)
        topics.append(DeleteRecordsTopicResult(name=topic.name, partitions=results))
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)


HANDLER = Handler(API_KEY, 0, 2, handle)
