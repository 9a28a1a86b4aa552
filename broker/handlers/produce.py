"""Produce (key 0), versions 0-11.

The client's record batches are appended as they arrived: storage scans their records (Kafka's
LogValidator, without decoding them), patches base offsets and the leader epoch in place (and
the max timestamp when the records or a LogAppendTime topic say so) and writes the buffer with
one call. Exceptions, as Kafka:

- v0-v2 carry legacy message sets (magic 0/1): they are up-converted to a v2 batch first.
- v3+ must carry exactly one v2 batch per partition (INVALID_RECORD otherwise); zstd needs v7+
  (UNSUPPORTED_COMPRESSION_TYPE).
- Client batches must not be control batches, must carry base offset 0 and a base sequence when
  they carry a producer id (Kafka's ``validateBatch``: INVALID_RECORD); a transactional batch
  in a request without transactional id fails the whole request
  (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka's authorizer check).
- Storage reads every record (Kafka's LogValidator: structure, keys on compacted topics,
  per-record timestamps); per-record rejections come back as ``record_errors`` (v8+) naming each
  record by its index in the batch (KIP-467).
- A topic whose ``compression.type`` names a codec (not ``producer``) gets every batch in that
  codec: batches in another one are decoded and rebuilt (zstd needs v7+).
- Idempotent batches (producer id set) are checked against the partition's producer state: a
  retried batch is acknowledged with its first offsets and not appended again;
  OUT_OF_ORDER_SEQUENCE_NUMBER and INVALID_PRODUCER_EPOCH otherwise.
- Transactional batches (in a request with a transactional id) open the producer's transaction
  on the partition at their first offset, which holds the last stable offset there until the
  coordinator's COMMIT/ABORT marker (WriteTxnMarkers); a non-transactional batch from a producer
  whose transaction is open is INVALID_TXN_STATE.
- KIP-890 verification (``transaction.partition.verification.enable``, default true): a
  transactional batch of a producer with no open transaction on the partition is appended only
  once the transactional id's coordinator confirms the partition is in the ongoing transaction
  (:mod:`broker.replica.txn_verification`; a local coordinator answers at once, a remote one
  with AddPartitionsToTxn v4 ``verify_only``, awaited without blocking the loop) and only if no
  marker ended the transaction meanwhile (the verification guard). Not in the transaction:
  INVALID_TXN_STATE ("Partition was not added to the transaction"; TRANSACTION_ABORTABLE from
  v11); CONCURRENT_TRANSACTIONS, NETWORK_EXCEPTION and the coordinator errors:
  NOT_ENOUGH_REPLICAS, which old clients retry; PRODUCER_FENCED: INVALID_PRODUCER_EPOCH.
  Transactional batches of two producer ids in one request: INVALID_PRODUCER_ID_MAPPING for all.

Authorization (an authorizer configured): WRITE on each topic (TOPIC_AUTHORIZATION_FAILED for
its partitions); transactional records need WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED for the whole request). Kafka 3.9 no longer checks
IDEMPOTENT_WRITE on produce (only on InitProducerId).

When ``flush.messages`` is reached the partition is fsync'd before the answer, as Kafka's append
does on its request thread; here the fsync runs in a disk worker while the event loop serves
other requests (KAFKA_STORAGE_ERROR if it fails).

acks must be -1, 0 or 1 (INVALID_REQUIRED_ACKS). acks=-1 needs at least ``min.insync.replicas``
in the ISR (NOT_ENOUGH_REPLICAS) before the append (deliberately not capped by the replication
factor as Kafka 3.9's effectiveMinIsr is: RF 1 with min.insync.replicas=2 refuses acks=all, as
Brook always has), and is then a delayed produce
(:class:`~broker.replica.delayed_produce.DelayedProduce`): each partition is answered when the
high watermark passes its batch (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is then, or
meanwhile became, smaller than ``min.insync.replicas``), REQUEST_TIMED_OUT when ``timeout_ms``
passes first; with one broker that is immediate. acks=1 answers after the leader's append.
acks=0 gets no response (the network layer drops it).
A disk error while appending answers KAFKA_STORAGE_ERROR for that partition and takes its log dir
offline (see :mod:`broker.replica.manager`); the other partitions of the request are answered as
usual; so are they when the append of one partition fails otherwise (UNKNOWN_SERVER_ERROR for
it, logged). From v10, a NOT_LEADER_OR_FOLLOWER partition carries the current leader and epoch and
the response that leader's endpoint (KIP-951), from the hosted replica or the metadata cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from broker.cluster.metadata import INTERNAL_TOPICS
from broker.handlers.base import Handler, RequestContext
from broker.replica.delayed_produce import DelayedProduce
from broker.replica.partition import AppendOutcome, Partition
from broker.security.authz import TRANSACTIONAL_ID, Op, authorize, checker
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.exceptions import DecodeError
from protocol.messages.produce_request import ProduceRequest
from protocol.messages.produce_response import (
    BatchIndexAndErrorMessage,
    LeaderIdAndEpoch,
    NodeEndpoint,
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)
from protocol.records import batch as rb
from protocol.records import build_batch, decode_batch
from protocol.records.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD
from storage import (
    CorruptBatchError,
    InvalidMagicError,
    InvalidRecordBatchError,
    InvalidTimestampError,
    Log,
    LogConfig,
    LogDeletedError,
    LogDirOfflineError,
    RecordTooLargeError,
    StorageCorruptionError,
    StorageError,
)
from storage.producer_state import SENTINEL_GUARD, VerificationGuard

if TYPE_CHECKING:
    from broker.replica.txn_verification import Errors as VerificationErrors

log = logging.getLogger(__name__)

API_KEY = 0
#: Topic compression.type values that name a codec ("producer" keeps what the client sent).
TOPIC_CODECS = {"uncompressed": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}


class _Reject(Exception):
    def __init__(
        self, code: ErrorCode, message: str, record_errors: list[BatchIndexAndErrorMessage] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.record_errors = record_errors or []


def handle(
    ctx: RequestContext, request: ProduceRequest
) -> ProduceResponse | Awaitable[ProduceResponse | None] | None:
    acks = request.acks
    # Problems of the whole request answer every partition alike.
    request_error: tuple[ErrorCode, str | None] | None = None
    verification: _Verification | None = None
    if acks not in (-1, 0, 1):
        request_error = (ErrorCode.INVALID_REQUIRED_ACKS, None)
    elif request.transactional_id is None and _has_transactional_records(request):
        # Kafka checks the transactional id's authorization for such a request, and there is none.
        request_error = (
            ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "Transactional Id authorization failed.",
        )
    elif (
        ctx.broker.authorizer is not None
        and request.transactional_id is not None
        and not authorize(ctx, Op.WRITE, TRANSACTIONAL_ID, request.transactional_id)
        and _has_transactional_records(request)
    ):
        request_error = (
            ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "Transactional Id authorization failed.",
        )
    elif request.transactional_id is not None:
        started = _start_verification(ctx, request)
        if isinstance(started, _Verification):
            if started.pending is not None:
                return _append_after_verification(ctx, request, started)
            verification = started
        elif started is not None:
            request_error = started
    return _append_all(ctx, request, request_error, verification)


class _Verification:
    """KIP-890 state of one transactional produce: each partition's guard, the partitions the
    coordinator did not verify (with the produce error), and the answer still awaited."""

    __slots__ = ("errors", "guards", "pending")

    def __init__(
        self,
        guards: dict[TopicPartition, VerificationGuard],
        errors: dict[TopicPartition, tuple[ErrorCode, str]],
        pending: asyncio.Future[VerificationErrors] | None = None,
    ) -> None:
        self.guards = guards
        self.errors = errors
        self.pending = pending


def _start_verification(
    ctx: RequestContext, request: ProduceRequest
) -> _Verification | tuple[ErrorCode, str] | None:
    """Kafka's handleProduceAppend before the append: guards for the partitions with a
    transactional batch, and the coordinator asked about those whose producer has no open
    transaction there. None when verification is off or there is no transactional batch."""
    transactional: dict[TopicPartition, rb.BatchHeader] = {}
    for topic in request.topic_data:
        for pdata in topic.partition_data:
            header = _transactional_header(pdata.records)
            if header is not None:
                transactional[TopicPartition(topic.name, pdata.index)] = header
    if not transactional:
        return None
    broker = ctx.broker
    verifier = broker.txn_verifier
    if not verifier.enabled:
        return None
    producers = {(h.producer_id, h.producer_epoch) for h in transactional.values()}
    if len(producers) > 1:
        return (
            ErrorCode.INVALID_PRODUCER_ID_MAPPING,
            "Transactional records contained more than one producer ID",
        )
    ((producer_id, producer_epoch),) = producers
    guards: dict[TopicPartition, VerificationGuard] = {}
    for tp, header in transactional.items():
        partition, _ = broker.replica_manager.leader_for(tp.topic, tp.partition)
        if partition is not None:  # otherwise the append answers the partition's error
            guards[tp] = partition.maybe_start_transaction_verification(
                producer_id, header.base_sequence, producer_epoch
            )
    assert request.transactional_id is not None
    # Imported here: only a transactional produce needs it (and its AddPartitionsToTxn messages).
    from broker.replica.txn_verification import produce_error

    answer = verifier.start(
        request.transactional_id, producer_id, producer_epoch, guards.items(), generic_errors=ctx.version > 10
    )
    if isinstance(answer, dict):
        return _Verification(guards, {tp: produce_error(e) for tp, e in answer.items()})
    return _Verification(guards, {}, answer)


async def _append_after_verification(
    ctx: RequestContext, request: ProduceRequest, verification: _Verification
) -> ProduceResponse | None:
    assert verification.pending is not None
    from broker.replica.txn_verification import produce_error

    answer = await verification.pending
    verification.errors = {tp: produce_error(e) for tp, e in answer.items()}
    verification.pending = None
    result = _append_all(ctx, request, None, verification)
    if result is None or isinstance(result, ProduceResponse):
        return result
    return await result


def _transactional_header(records: object) -> rb.BatchHeader | None:
    """The header of a v2 transactional batch with a producer id, if ``records`` starts with one."""
    if (
        isinstance(records, (bytes, bytearray, memoryview))
        and len(records) > rb.ATTRIBUTES_OFFSET + 1
        and records[rb.MAGIC_OFFSET] == 2
        and records[rb.ATTRIBUTES_OFFSET + 1] & rb.TRANSACTIONAL_MASK
    ):
        try:
            header = rb.read_header(records, 0)
        except DecodeError:
            return None  # the append rejects it
        if header.producer_id >= 0:
            return header
    return None


def _append_all(
    ctx: RequestContext,
    request: ProduceRequest,
    request_error: tuple[ErrorCode, str | None] | None,
    verification: _Verification | None,
) -> ProduceResponse | Awaitable[ProduceResponse | None] | None:
    broker = ctx.broker
    version = ctx.version
    acks = request.acks
    replicas = broker.replica_manager
    metadata = broker.metadata
    responses: list[TopicProduceResponse] = []
    to_flush: list[tuple[PartitionProduceResponse, Log, int]] | None = None
    to_replicate: list[tuple[PartitionProduceResponse, Partition, int]] | None = None
    may_write = checker(ctx, Op.WRITE)
    for topic in request.topic_data:
        name = topic.name
        authorized = may_write(name)
        if broker.cluster_mode:
            internal = name in INTERNAL_TOPICS and broker.metadata_cache.contains(name)
        else:
            info = metadata.topic(name)
            internal = info is not None and info.is_internal
        results: list[PartitionProduceResponse] = []
        for pdata in topic.partition_data:
            index = pdata.index
            if request_error is not None:
                results.append(_error(index, request_error[0], version, request_error[1]))
                continue
            if not authorized:
                results.append(_error(index, ErrorCode.TOPIC_AUTHORIZATION_FAILED, version))
                continue
            if internal:
                message = f"Cannot append to internal topic {name}"
                results.append(_error(index, ErrorCode.INVALID_TOPIC_EXCEPTION, version, message))
                continue
            partition, code = replicas.leader_for(name, index)
            if partition is None:
                results.append(_error(index, code, version))
                continue
            if acks == -1 and len(partition.state.isr) < partition.log.config.min_insync_replicas:
                results.append(_error(index, ErrorCode.NOT_ENOUGH_REPLICAS, version))
                continue
            guard: VerificationGuard | None = None
            if verification is not None:
                tp = TopicPartition(name, index)
                failed = verification.errors.get(tp)
                if failed is not None:
                    results.append(_error(index, failed[0], version, failed[1]))
                    continue
                guard = verification.guards.get(tp, SENTINEL_GUARD)
            try:
                records, header = _prepare(pdata.records, version, partition.log.config, f"{name}-{index}")
                outcome: AppendOutcome = partition.append_as_leader(records, header, guard)
            except _Reject as exc:
                results.append(_error(index, exc.code, version, exc.message, exc.record_errors))
                continue
            except StorageError as exc:
                record_errors = [
                    BatchIndexAndErrorMessage(i, message) for i, message in getattr(exc, "record_errors", ())
                ]
                results.append(_error(index, _storage_error_code(exc), version, str(exc), record_errors))
                continue
            except OSError as exc:
                code = replicas.storage_failure(partition, exc, "appending records to")
                results.append(_error(index, code, version))  # no message, as Kafka for a disk error
                continue
            except Exception:
                # As Kafka's appendToLocalLog: any other failure is this partition's alone, so the
                # partitions already appended are still answered (a closed connection makes
                # clients resend them).
                log.exception("append to %s-%d failed", name, index)
                results.append(_error(index, ErrorCode.UNKNOWN_SERVER_ERROR, version))
                continue
            if outcome.error:
                results.append(_error(index, outcome.error, version, outcome.message))
                continue
            # Kafka's MessagesInPerSec / BytesInPerSec: once per batch, the bytes as received.
            broker.stats.produced(name, outcome.last_offset - outcome.base_offset + 1, len(pdata.records))
            answer = PartitionProduceResponse(
                index=index,
                error_code=0,
                base_offset=outcome.base_offset,
                log_append_time_ms=outcome.log_append_time,
                log_start_offset=outcome.log_start_offset if version >= 5 else -1,
            )
            results.append(answer)
            if partition.log.flush_needed():
                if to_flush is None:
                    to_flush = []
                to_flush.append((answer, partition.log, outcome.last_offset + 1))
            if acks == -1 and partition.high_watermark <= outcome.last_offset:
                if to_replicate is None:
                    to_replicate = []
                to_replicate.append((answer, partition, outcome.last_offset + 1))
        responses.append(TopicProduceResponse(name=name, partition_responses=results))
    if to_flush is not None:
        return _answer_later(ctx, acks, responses, to_flush, to_replicate or [], request.timeout_ms)
    if to_replicate is not None:
        return _answer_when_replicated(ctx, acks, responses, to_replicate, request.timeout_ms)
    return _answer(ctx, acks, responses)


def _answer_when_replicated(
    ctx: RequestContext,
    acks: int,
    responses: list[TopicProduceResponse],
    to_replicate: list[tuple[PartitionProduceResponse, Partition, int]],
    timeout_ms: int,
) -> ProduceResponse | asyncio.Future[ProduceResponse | None] | None:
    """acks=all: the answer, once the high watermark passes every appended batch, built in the
    call that moved it (no task per request: a backlog of small pipelined produces is the load
    where that cost counts)."""
    answered: asyncio.Future[ProduceResponse | None] = asyncio.get_running_loop().create_future()

    def replicated(codes: list[ErrorCode]) -> None:
        for (answer, _, _), code in zip(to_replicate, codes, strict=True):
            # As Kafka's DelayedProduce: the offsets stay, the error code tells.
            answer.error_code = code
        if not answered.done():
            answered.set_result(_answer(ctx, acks, responses))

    delayed = DelayedProduce([(p, offset) for _, p, offset in to_replicate], timeout_ms, replicated)
    if answered.done():  # replicated already (the ISR is the leader alone)
        return answered.result()
    # The connection closed: stop waiting (the slot is gone, nothing is answered).
    answered.add_done_callback(lambda f: delayed.cancel() if f.cancelled() else None)
    return answered


async def _answer_later(
    ctx: RequestContext,
    acks: int,
    responses: list[TopicProduceResponse],
    to_flush: list[tuple[PartitionProduceResponse, Log, int]],
    to_replicate: list[tuple[PartitionProduceResponse, Partition, int]],
    timeout_ms: int,
) -> ProduceResponse | None:
    """Answer after the flushes (flush.messages) and the replication (acks=all) they wait for."""
    if to_flush:
        await _flush(ctx, to_flush)
    if to_replicate:
        waiting = [(answer, p, offset) for answer, p, offset in to_replicate if not answer.error_code]
        delayed = DelayedProduce([(p, offset) for _, p, offset in waiting], timeout_ms)
        codes = await delayed.future
        for (answer, _, _), code in zip(waiting, codes, strict=True):
            # As Kafka's DelayedProduce: the offsets stay, the error code tells.
            answer.error_code = code
    return _answer(ctx, acks, responses)


async def _flush(ctx: RequestContext, to_flush: list[tuple[PartitionProduceResponse, Log, int]]) -> None:
    """flush.messages reached: fsync those partitions in disk workers."""
    disk = ctx.broker.disk
    outcomes = await asyncio.gather(
        *(disk.run(log_.flush, up_to) for _, log_, up_to in to_flush), return_exceptions=True
    )
    for (answer, log_, _), outcome in zip(to_flush, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, (StorageError, OSError)):
                raise outcome
            if isinstance(outcome, OSError):  # a disk error: the log dir goes offline
                ctx.broker.log_manager.mark_offline_for(log_, f"flushing {log_.directory.name}", outcome)
            else:
                log.error("cannot flush %s: %s", log_.directory.name, outcome)
            failed = _error(answer.index, ErrorCode.KAFKA_STORAGE_ERROR, ctx.version, str(outcome))
            answer.error_code = failed.error_code
            answer.base_offset = failed.base_offset
            answer.log_append_time_ms = failed.log_append_time_ms
            answer.log_start_offset = failed.log_start_offset
            answer.error_message = failed.error_message


def _answer(ctx: RequestContext, acks: int, responses: list[TopicProduceResponse]) -> ProduceResponse | None:
    if acks == 0:
        # No response at all; as in Kafka, a failure can only be signalled by closing the connection.
        if any(p.error_code for t in responses for p in t.partition_responses):
            ctx.conn.close("acks=0 produce failed")
        return None
    endpoints = _leader_hints(ctx, responses) if ctx.version >= 10 else []
    return ProduceResponse(responses=responses, throttle_time_ms=0, node_endpoints=endpoints)


def _leader_hints(ctx: RequestContext, responses: list[TopicProduceResponse]) -> list[NodeEndpoint]:
    """KIP-951 (v10+): a NOT_LEADER_OR_FOLLOWER partition names the current leader and epoch, and
    the response carries that leader's endpoint, as Kafka's handleProduceRequest."""
    replicas = ctx.broker.replica_manager
    endpoints: dict[int, NodeEndpoint] = {}
    for topic in responses:
        for p in topic.partition_responses:
            if p.error_code != ErrorCode.NOT_LEADER_OR_FOLLOWER:
                continue
            hint = replicas.current_leader(TopicPartition(topic.name, p.index), ctx.conn.listener)
            p.current_leader = LeaderIdAndEpoch(hint.leader_id, hint.leader_epoch)
            node = hint.endpoint
            if node is not None:
                endpoints[node.node_id] = NodeEndpoint(node.node_id, node.host, node.port, node.rack)
    return list(endpoints.values())


def _prepare(
    records: object, version: int, config: LogConfig, partition: str
) -> tuple[memoryview, rb.BatchHeader | None]:
    """Shape checks of Kafka's ProduceRequest validation and its client batch rules; returns a
    writable view of the batches and, for a single batch, its header (idempotence applies then)."""
    if records is None:
        raise _Reject(ErrorCode.INVALID_RECORD, "produce request without records")
    view = records if isinstance(records, memoryview) else memoryview(bytearray(records))  # type: ignore[arg-type]
    if view.nbytes < rb.LOG_OVERHEAD + 5:
        raise _Reject(ErrorCode.CORRUPT_MESSAGE, "record data is too short to hold a batch")
    magic = rb.magic_at(view, 0)  # the length check above guarantees the byte is there
    if magic < 2:
        if version >= 3:
            raise _Reject(
                ErrorCode.INVALID_RECORD, "Produce requests with version 3 and above must have magic v2"
            )
        from protocol.records.convert import upconvert_to_v2  # magic 0/1 only: loaded at first use

        try:
            view = memoryview(bytearray(upconvert_to_v2(view, now_ms=int(time.time() * 1000))))
        except DecodeError as exc:
            raise _Reject(ErrorCode.CORRUPT_MESSAGE, str(exc)) from None
    elif magic > 2:
        raise _Reject(ErrorCode.CORRUPT_MESSAGE, f"unknown magic {magic}")
    if view.readonly:
        view = memoryview(bytearray(view))
    header: rb.BatchHeader | None = None
    if version >= 3 or magic == 2:
        try:
            header = rb.read_header(view, 0)
        except DecodeError as exc:
            raise _Reject(ErrorCode.CORRUPT_MESSAGE, str(exc)) from None
        if header.size != view.nbytes:
            if version >= 3:
                raise _Reject(
                    ErrorCode.INVALID_RECORD,
                    "Produce requests with version 3 and above must contain exactly one record batch",
                )
            if magic == 2:  # v2 batches go one per partition, whatever the request version
                raise _Reject(ErrorCode.INVALID_RECORD, "Compressed outer record has more than one batch")
            header = None
    if header is not None and header.compression == ZSTD and version < 7:
        raise _Reject(
            ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
            "Produce requests with version below 7 cannot use zstd compression",
        )
    if header is not None:
        _check_client_batch(header, partition)
    target = TOPIC_CODECS.get(config.compression_type)
    if target is not None:
        if target == ZSTD and version < 7:
            raise _Reject(
                ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                "Produce requests to a compression.type=zstd topic need version 7 or above",
            )
        if header is None or header.compression != target:
            view = _recompress(view, target)
            if header is not None:
                header = rb.read_header(view, 0)
    return view, header


def _recompress(view: memoryview, codec: int) -> memoryview:
    """A topic whose compression.type names a codec stores every batch in it, as Kafka does: the
    batches are rebuilt with the same offsets deltas, timestamps and producer fields."""
    out = bytearray()
    try:
        for pos, _ in rb.iter_batches(view):
            header, records = decode_batch(view, pos)
            if header.compression == codec or header.is_control:
                out += view[pos : pos + header.size]
                continue
            out += build_batch(
                records,
                base_timestamp=header.base_timestamp,
                max_timestamp=header.max_timestamp,
                compression=codec,
                log_append_time=header.is_log_append_time,
                producer_id=header.producer_id,
                producer_epoch=header.producer_epoch,
                base_sequence=header.base_sequence,
                transactional=header.is_transactional,
                partition_leader_epoch=header.partition_leader_epoch,
                last_offset_delta=header.last_offset_delta,
            )
    except DecodeError as exc:
        raise _Reject(ErrorCode.CORRUPT_MESSAGE, str(exc)) from None
    return memoryview(out)


def _has_transactional_records(request: ProduceRequest) -> bool:
    """Whether some partition's (first) batch is transactional (Kafka's
    ``RequestUtils.hasTransactionalRecords``)."""
    for topic in request.topic_data:
        for pdata in topic.partition_data:
            records = pdata.records
            if (
                isinstance(records, (bytes, bytearray, memoryview))
                and len(records) > rb.ATTRIBUTES_OFFSET + 1
                and records[rb.MAGIC_OFFSET] == 2
                and records[rb.ATTRIBUTES_OFFSET + 1] & rb.TRANSACTIONAL_MASK
            ):
                return True
    return False


def _check_client_batch(header: rb.BatchHeader, partition: str) -> None:
    """What Kafka checks of a batch only when a client sends it (``analyzeAndValidateRecords``,
    ``LogValidator.validateBatch``); the broker's own appends may do these things."""
    if header.base_offset != 0:
        raise _Reject(
            ErrorCode.INVALID_RECORD,
            f"The baseOffset of the record batch in the append to {partition} should be 0, "
            f"but it is {header.base_offset}",
        )
    if header.is_control:
        raise _Reject(
            ErrorCode.INVALID_RECORD,
            f"Clients are not allowed to write control records in topic partition {partition}",
        )
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise _Reject(
            ErrorCode.INVALID_RECORD,
            f"Invalid sequence number {header.base_sequence} in record batch with producerId "
            f"{header.producer_id} in topic partition {partition}",
        )


def _storage_error_code(exc: StorageError) -> ErrorCode:
    if isinstance(exc, RecordTooLargeError):
        return ErrorCode.MESSAGE_TOO_LARGE
    if isinstance(exc, CorruptBatchError):
        return ErrorCode.CORRUPT_MESSAGE
    if isinstance(exc, InvalidTimestampError):
        return ErrorCode.INVALID_TIMESTAMP
    if isinstance(exc, (InvalidRecordBatchError, InvalidMagicError)):
        return ErrorCode.INVALID_RECORD
    if isinstance(exc, (LogDirOfflineError, LogDeletedError, StorageCorruptionError)):
        return ErrorCode.KAFKA_STORAGE_ERROR
    log.error("append failed: %s", exc)
    return ErrorCode.UNKNOWN_SERVER_ERROR


def _error(
    index: int,
    code: ErrorCode,
    version: int,
    message: str | None = None,
    record_errors: list[BatchIndexAndErrorMessage] | None = None,
) -> PartitionProduceResponse:
    return PartitionProduceResponse(
        index=index,
        error_code=code,
        base_offset=-1,
        log_append_time_ms=-1,
        log_start_offset=-1,
        record_errors=(record_errors or []) if version >= 8 else [],
        error_message=message if version >= 8 else None,
    )


HANDLER = Handler(API_KEY, 0, 11, handle)
