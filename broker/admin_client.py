"""A small blocking admin client over Brook's own protocol codec: create, delete, list and describe
topics on any Kafka-compatible broker, with no Kafka client library installed.

It exists for the pytest plugin's ``kafka_admin`` fixture, :mod:`broker.embedded_cluster` and
scripts. It talks to one broker at a time: the first bootstrap address that accepts a connection
(the next ones when that broker goes away). Topic creation and deletion answered NOT_CONTROLLER (a
ZooKeeper-mode cluster runs them on its controller) are sent again to the controller that Metadata
names. Requests and responses are the
generated classes of :mod:`protocol.messages`, framed by :func:`protocol.api.encode_request`.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, cast

from broker.network.hosts import resolvable
from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.message import Message
from protocol.messages.create_topics_request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from storage.fast_dataclass import dataclass

#: Versions every Kafka 2.x/3.x broker answers; no flexible-version feature is needed here.
METADATA_VERSION = 9
CREATE_TOPICS_VERSION = 5
DELETE_TOPICS_VERSION = 4
DESCRIBE_CONFIGS_VERSION = 4
TOPIC_RESOURCE = 2
MAX_RESPONSE = 64 << 20
#: How many times a create or delete follows NOT_CONTROLLER to a newly named controller.
CONTROLLER_ATTEMPTS = 5


class AdminError(Exception):
    """A request failed with a Kafka error code (``code`` is the :class:`ErrorCode`)."""

    def __init__(self, code: int, message: str | None, subject: str = "") -> None:
        self.code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        name = self.code.name if isinstance(self.code, ErrorCode) else f"error {code}"
        text = f"{subject}: {name}" if subject else name
        super().__init__(f"{text} ({message})" if message else text)


@dataclass(frozen=True, slots=True)
class TopicDescription:
    name: str
    partitions: int
    internal: bool


@dataclass(frozen=True, slots=True)
class PartitionState:
    leader: int  # -1: no leader
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    """One broker's Metadata answer: the live brokers it knows, the controller, partition states."""

    brokers: dict[int, tuple[str, int]]
    controller_id: int
    #: topic -> partition -> state (only the topics asked for, or every topic)
    topics: dict[str, dict[int, PartitionState]]


def _parse_address(entry: str) -> tuple[str, int]:
    host, _, port = entry.strip().rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class KafkaAdmin:
    """Admin requests to a broker of ``bootstrap`` (``host:port[,host:port...]``), over one
    connection opened on first use. Thread-safe (one request at a time); use as a context manager
    or :meth:`close`."""

    def __init__(self, bootstrap: str, *, timeout: float = 30.0, client_id: str = "brook-admin") -> None:
        self.addresses = [_parse_address(entry) for entry in bootstrap.split(",") if entry.strip()]
        if not self.addresses:
            raise ValueError(f"no bootstrap address in {bootstrap!r}")
        self.address = self.addresses[0]
        self.timeout = timeout
        self.client_id = client_id
        self._sock: socket.socket | None = None
        self._correlation = 0
        self._lock = threading.Lock()

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        config: Mapping[str, str | int | bool] | None = None,
    ) -> None:
        """Create ``name``; raises :class:`AdminError` (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...)."""
        topic = CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            configs=[CreatableTopicConfig(k, _text(v)) for k, v in (config or {}).items()],
        )
        request = CreateTopicsRequest(topics=[topic], timeout_ms=int(self.timeout * 1000))
        self._on_controller(request, CREATE_TOPICS_VERSION, lambda r: r.topics, name)

    def delete_topic(self, name: str) -> None:
        """Delete ``name``; raises :class:`AdminError` (UNKNOWN_TOPIC_OR_PARTITION, ...)."""
        # The message modules other than CreateTopics' are imported at first use: a test's first
        # broker usually only creates topics (bench/bench_embedded.py's cold start).
        from protocol.messages.delete_topics_request import DeleteTopicsRequest

        request = DeleteTopicsRequest(topic_names=[name], timeout_ms=int(self.timeout * 1000))
        self._on_controller(request, DELETE_TOPICS_VERSION, lambda r: r.responses, name)

    def _on_controller(self, request: Message, version: int, results: Any, name: str) -> None:
        """Send ``request`` (one topic); on NOT_CONTROLLER, again to the controller Metadata names."""
        for _ in range(CONTROLLER_ATTEMPTS):
            response = self._call(request, version)
            codes = [(r.error_code, r.error_message) for r in results(response)]
            if any(code == ErrorCode.NOT_CONTROLLER for code, _ in codes):
                self._move_to_controller()
                continue
            for code, message in codes:
                if code:
                    raise AdminError(code, message, name)
            return
        raise AdminError(ErrorCode.NOT_CONTROLLER, "the controller kept moving", name)

    def _move_to_controller(self) -> None:
        cluster = self.describe_cluster([])
        address = cluster.brokers.get(cluster.controller_id)
        if address is None:
            raise AdminError(ErrorCode.NOT_CONTROLLER, "no live controller in the cluster's Metadata")
        with self._lock:
            if address != self.address:
                self._disconnect()
                self.address = address

    def describe_cluster(self, topics: Iterable[str] | None = None) -> ClusterDescription:
        """The brokers, the controller and the partition states of ``topics`` (None: every topic)
        as the connected broker sees them. Unknown topics are left out."""
        from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic

        wanted = None if topics is None else [MetadataRequestTopic(name=n) for n in topics]
        request = MetadataRequest(topics=wanted, allow_auto_topic_creation=False)
        response = self._call(request, METADATA_VERSION)
        states: dict[str, dict[int, PartitionState]] = {}
        for topic in response.topics:
            if topic.error_code == 0:
                states[topic.name or ""] = {
                    p.partition_index: PartitionState(p.leader_id, tuple(p.replica_nodes), tuple(p.isr_nodes))
                    for p in topic.partitions
                }
        return ClusterDescription(
            brokers={b.node_id: (b.host, b.port) for b in response.brokers},
            controller_id=response.controller_id,
            topics=states,
        )

    def list_topics(self, *, internal: bool = False) -> set[str]:
        """The names of every topic (internal ones such as ``__consumer_offsets`` on request)."""
        return {t.name for t in self.describe_topics(None) if internal or not t.internal}

    def describe_topic(self, name: str) -> TopicDescription:
        """Partition count of ``name``; raises :class:`AdminError` if it does not exist."""
        return self.describe_topics([name])[0]

    def describe_topics(self, names: Iterable[str] | None) -> list[TopicDescription]:
        from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic

        topics = None if names is None else [MetadataRequestTopic(name=n) for n in names]
        request = MetadataRequest(topics=topics, allow_auto_topic_creation=False)
        response = self._call(request, METADATA_VERSION)
        result = []
        for topic in response.topics:
            if topic.error_code:
                raise AdminError(topic.error_code, None, topic.name or "")
            result.append(TopicDescription(topic.name or "", len(topic.partitions), topic.is_internal))
        return result

    def topic_config(self, name: str) -> dict[str, str | None]:
        """Every config of topic ``name`` with its effective value (DescribeConfigs)."""
        from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource

        request = DescribeConfigsRequest(resources=[DescribeConfigsResource(TOPIC_RESOURCE, name, None)])
        response = self._call(request, DESCRIBE_CONFIGS_VERSION)
        result = response.results[0]
        if result.error_code:
            raise AdminError(result.error_code, result.error_message, name)
        return {c.name: c.value for c in result.configs}

    # -- connection -----------------------------------------------------------------------------

    def _call(self, request: Message, version: int) -> Any:
        with self._lock:
            self._correlation += 1
            correlation = self._correlation
            frame = papi.encode_request(request, version, correlation, self.client_id)
            sock = self._connect()
            try:
                sock.sendall(frame)
                (size,) = struct.unpack(">i", self._read(sock, 4))
                if not 0 < size <= MAX_RESPONSE:
                    raise OSError(f"bad response size {size}")
                got, body = papi.decode_response(self._read(sock, size), request.API_KEY, version)
            except BaseException:
                self._disconnect()
                raise
            if got != correlation:
                self._disconnect()
                raise OSError(f"response to request {got}, expected {correlation}")
            return body

    def _connect(self) -> socket.socket:
        if self._sock is None:
            # The current address first, then the other bootstrap addresses in order.
            candidates = [self.address, *(a for a in self.addresses if a != self.address)]
            failure: OSError | None = None
            for address in candidates:
                try:
                    host, port = address
                    # A bytes host works (getaddrinfo takes one); typeshed lists only str.
                    target = (cast(str, resolvable(host)), port)
                    self._sock = socket.create_connection(target, timeout=self.timeout)
                except OSError as exc:
                    failure = exc
                    continue
                self.address = address
                break
            else:
                assert failure is not None
                raise failure
        return self._sock

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @staticmethod
    def _read(sock: socket.socket, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise OSError("connection closed by the broker")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def __enter__(self) -> KafkaAdmin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
