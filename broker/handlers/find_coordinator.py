"""FindCoordinator (key 10), versions 0-6.

A group's coordinator is the leader of its ``__consumer_offsets`` partition,
``abs(javaStringHashCode(group_id)) % offsets.topic.num.partitions``. The topic is created the
first time a coordinator is looked up (see :mod:`broker.group.store`), so the first answer
already names the coordinator (Kafka answers COORDINATOR_NOT_AVAILABLE once while it creates
the topic; clients retry either way). v1+ carries a key type: 0 group, 1 transaction, 2 share
(v6+ only, INVALID_REQUEST before). A transactional id's coordinator is, the same way, the leader
of its ``__transaction_state`` partition (``transaction.state.log.num.partitions``), a topic
created on the first lookup of a transactional id like the offsets topic (see
:mod:`broker.txn.store`). Brook has no share coordinator: share keys get
COORDINATOR_NOT_AVAILABLE. v4+ batches keys (``coordinator_keys``) and answers one
entry per key; v0-v3 answer a single coordinator with the error message (v1+) ``"NONE"`` on
success, as Kafka does, and node -1, host "" and port -1 on error. A group whose partition lies
in a failed log dir gets COORDINATOR_NOT_AVAILABLE (the partition has no leader then).

In cluster mode the coordinator is the partition's leader in the controller's metadata cache, on
the request's listener; while the cache has no ``__consumer_offsets`` or the leader is not alive
there, COORDINATOR_NOT_AVAILABLE, as Kafka. In ZooKeeper mode a lookup while the cache has no
``__consumer_offsets`` first writes it to ZooKeeper (any broker, as Kafka's
AutoTopicCreationManager) with ``offsets.topic.num.partitions`` and
``offsets.topic.replication.factor``, which fails while fewer brokers are alive (logged); either
way the answer is COORDINATOR_NOT_AVAILABLE until the controller's UpdateMetadata brings leaders.

Authorization (an authorizer configured): DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) or the
transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), per key.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from broker.cluster.metadata import BrokerEndpoint
from broker.cluster.topics import TopicError
from broker.group import OFFSETS_TOPIC
from broker.handlers.base import Handler, RequestContext
from broker.security.authz import GROUP as GROUP_RESOURCE
from broker.security.authz import TRANSACTIONAL_ID, Op, authorize
from broker.txn import TRANSACTION_STATE_TOPIC
from broker.types import TopicPartition
from protocol.error_codes import ErrorCode
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse

if TYPE_CHECKING:
    # ZooKeeper mode only: kazoo and the ZooKeeper client load with it, never on the embedded node.
    from broker.cluster.zk_admin import ZkAdmin

log = logging.getLogger(__name__)

API_KEY = 10
GROUP, TRANSACTION, SHARE = 0, 1, 2

#: Kafka's texts for the errors this api returns (``Errors.message()``).
_MESSAGES = {
    ErrorCode.NONE: "NONE",
    ErrorCode.COORDINATOR_NOT_AVAILABLE: "The coordinator is not available.",
    ErrorCode.GROUP_AUTHORIZATION_FAILED: "Not authorized to access group: Group authorization failed.",
    ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "Transactional Id authorization failed.",
    ErrorCode.INVALID_REQUEST: (
        "This most likely occurs because of a request being malformed by the client library or the "
        "message was sent to an incompatible broker. See the broker logs for more details."
    ),
}


def _find(ctx: RequestContext, key_type: int, key: str) -> tuple[ErrorCode, BrokerEndpoint | None]:
    if key_type == SHARE and ctx.version < 6:
        return ErrorCode.INVALID_REQUEST, None
    if key_type == TRANSACTION:
        if not authorize(ctx, Op.DESCRIBE, TRANSACTIONAL_ID, key):
            return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, None
        return _find_transaction_coordinator(ctx, key)
    if key_type == GROUP and not authorize(ctx, Op.DESCRIBE, GROUP_RESOURCE, key):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED, None
    if key_type != GROUP:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, None
    store = ctx.broker.group_coordinator.store
    if ctx.broker.cluster_mode:
        return _find_in_cache(ctx, TopicPartition(OFFSETS_TOPIC, store.partition_for(key)))
    info = store.info
    if info is None:  # its creation failed (logged)
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, None
    index = store.partition_for(key)
    if ctx.broker.replica_manager.is_offline(TopicPartition(info.name, index)):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, None  # leaderless, as Metadata shows it
    leader = info.partitions[index].leader
    for endpoint in ctx.broker.live_brokers(ctx.conn.listener):
        if endpoint.node_id == leader:
            return ErrorCode.NONE, endpoint
    return ErrorCode.COORDINATOR_NOT_AVAILABLE, None


def _find_transaction_coordinator(ctx: RequestContext, key: str) -> tuple[ErrorCode, BrokerEndpoint | None]:
    store = ctx.broker.txn_coordinator.store
    tp = TopicPartition(TRANSACTION_STATE_TOPIC, store.partition_for(key))
    if ctx.broker.cluster_mode:
        return _find_in_cache(ctx, tp)
    info = store.info
    if info is None or ctx.broker.replica_manager.is_offline(tp):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, None
    leader = info.partitions[tp.partition].leader
    for endpoint in ctx.broker.live_brokers(ctx.conn.listener):
        if endpoint.node_id == leader:
            return ErrorCode.NONE, endpoint
    return ErrorCode.COORDINATOR_NOT_AVAILABLE, None


def _find_in_cache(ctx: RequestContext, tp: TopicPartition) -> tuple[ErrorCode, BrokerEndpoint | None]:
    cache = ctx.broker.metadata_cache
    state = cache.partition(tp)
    endpoint = None if state is None else cache.alive_endpoint(state.leader, ctx.conn.listener)
    if endpoint is None:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, None
    return ErrorCode.NONE, endpoint


def handle(
    ctx: RequestContext, request: FindCoordinatorRequest
) -> FindCoordinatorResponse | Awaitable[FindCoordinatorResponse]:
    key_type = request.key_type if ctx.version >= 1 else GROUP
    broker = ctx.broker
    if key_type == GROUP and not broker.cluster_mode and broker.metadata.topic(OFFSETS_TOPIC) is None:
        return _after_offsets_topic(ctx, request)
    admin = broker.zk_admin
    if key_type == GROUP and admin is not None and not broker.metadata_cache.contains(OFFSETS_TOPIC):
        return _after_offsets_topic_in_zookeeper(ctx, request, admin)
    creatable = not broker.cluster_mode or admin is not None
    if key_type == TRANSACTION and creatable and not broker.txn_coordinator.store.exists():
        return _after_transaction_topic(ctx, request)
    return _answer(ctx, request)


async def _after_transaction_topic(
    ctx: RequestContext, request: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    """The first transactional id lookup creates ``__transaction_state`` (ZooKeeper mode: writes
    it to ZooKeeper and answers COORDINATOR_NOT_AVAILABLE until the controller elects leaders)."""
    try:
        await ctx.broker.txn_coordinator.store.ensure_topic()
    except TopicError as exc:
        if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:
            log.warning("cannot create the transaction state topic: %s", exc)
    return _answer(ctx, request)


async def _after_offsets_topic_in_zookeeper(
    ctx: RequestContext, request: FindCoordinatorRequest, admin: ZkAdmin
) -> FindCoordinatorResponse:
    try:
        await admin.create_offsets_topic()
    except TopicError as exc:
        if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:
            log.warning("cannot create the offsets topic: %s", exc)
    return _answer(ctx, request)


async def _after_offsets_topic(
    ctx: RequestContext, request: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    """The first group lookup creates ``__consumer_offsets`` (its logs in disk workers)."""
    if ctx.broker.built_group_coordinator is None:
        await _load_group_modules()
    try:
        await ctx.broker.group_coordinator.store.ensure_topic()
    except TopicError as exc:
        log.warning("cannot create the offsets topic: %s", exc)
    return _answer(ctx, request)


#: The group coordinator's modules, dependencies first.
_GROUP_MODULES = (
    "broker.group.timers",
    "broker.group.member",
    "broker.group.state",
    "broker.group.records",
    "broker.group.group",
    "broker.group.loader",
    "broker.replica.delayed_produce",
    "broker.group.store",
    "broker.group.coordinator",
    "broker.group.offsets",
)


async def _load_group_modules() -> None:
    """Import the group coordinator a module at a time, yielding to the loop in between: its
    ~9 ms import would otherwise hold up every other client's requests (a consumer with a group
    id looks its coordinator up while it fetches by assignment)."""
    for name in _GROUP_MODULES:
        if name not in sys.modules:
            importlib.import_module(name)
            await asyncio.sleep(0)


def _answer(ctx: RequestContext, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    version = ctx.version
    key_type = request.key_type if version >= 1 else GROUP
    if key_type not in (GROUP, TRANSACTION, SHARE):
        error = ErrorCode.INVALID_REQUEST
        if version >= 4:
            return FindCoordinatorResponse(
                coordinators=[
                    Coordinator(key, -1, "", -1, error, _MESSAGES[error]) for key in request.coordinator_keys
                ]
            )
        return FindCoordinatorResponse(error_code=error, error_message=_MESSAGES[error], node_id=-1, port=-1)
    if version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            error, node = _find(ctx, key_type, key)
            if node is None:
                coordinators.append(Coordinator(key, -1, "", -1, error, _MESSAGES.get(error)))
            else:
                coordinators.append(Coordinator(key, node.node_id, node.host, node.port, error, ""))
        return FindCoordinatorResponse(coordinators=coordinators)
    error, node = _find(ctx, key_type, request.key)
    if node is None:
        return FindCoordinatorResponse(
            error_code=error, error_message=_MESSAGES.get(error), node_id=-1, host="", port=-1
        )
    return FindCoordinatorResponse(
        error_code=error, error_message=_MESSAGES[error], node_id=node.node_id, host=node.host, port=node.port
    )


HANDLER = Handler(API_KEY, 0, 6, handle)
