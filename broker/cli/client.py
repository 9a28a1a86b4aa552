"""The blocking Kafka client under the ``brook`` command line, on Brook's own protocol codec.

It bootstraps from several addresses, negotiates every api's version with ApiVersions (v3, with
Kafka's fallback to v0), and finds the controller, group and transaction coordinators and partition
leaders through Metadata and FindCoordinator, so the tools work against Apache Kafka as well as
Brook. One connection per node, opened on first use; one request in flight per connection.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from protocol import api as papi
from protocol.error_codes import ErrorCode
from protocol.exceptions import ProtocolError
from protocol.message import Message
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic

if TYPE_CHECKING:
    from broker.cli.security import ClientSecurity
    from broker.security.sasl_client import SaslClientSettings

MAX_RESPONSE = 256 << 20
RETRY_BACKOFF_S = 0.1
RETRY_BACKOFF_MAX_S = 1.0
T = TypeVar("T")
API_VERSIONS_KEY = 18
GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1
#: Versions whose layout the tools build on: later ones change shape (topic ids in Fetch v13+,
#: batched groups in OffsetFetch v8+ and FindCoordinator v4+, topic structs in DeleteTopics v6+).
VERSION_CAPS: dict[int, int] = {1: 12, 9: 7, 10: 3, 20: 5, 8: 8, 0: 11}

#: Kafka's default exception messages for the errors a tool user meets most.
ERROR_MESSAGES: dict[int, str] = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "This server does not host this topic-partition.",
    ErrorCode.TOPIC_ALREADY_EXISTS: "Topic with this name already exists.",
    ErrorCode.INVALID_PARTITIONS: "Number of partitions is below 1.",
    ErrorCode.INVALID_REPLICATION_FACTOR: (
        "Replication factor is below 1 or larger than the number of available brokers."
    ),
    ErrorCode.INVALID_CONFIG: "The configuration is invalid.",
    ErrorCode.INVALID_REQUEST: (
        "This most likely occurs because of a request being malformed by the client library "
        "or the message was sent to an incompatible broker. See the broker logs for more details."
    ),
    ErrorCode.GROUP_ID_NOT_FOUND: "The group id does not exist.",
    ErrorCode.NON_EMPTY_GROUP: "The group is not empty.",
    ErrorCode.TRANSACTIONAL_ID_NOT_FOUND: "The transactionalId could not be found.",
    ErrorCode.UNSUPPORTED_VERSION: "The version of API is not supported.",
    ErrorCode.COORDINATOR_NOT_AVAILABLE: "The coordinator is not available.",
    ErrorCode.NOT_CONTROLLER: "This is not the correct controller for this cluster.",
    ErrorCode.SECURITY_DISABLED: "Security features are disabled.",
    ErrorCode.INVALID_TOPIC_EXCEPTION: "The request attempted to perform an operation on an invalid topic.",
    ErrorCode.UNKNOWN_SERVER_ERROR: "The server experienced an unexpected error when processing the request.",
}


class CliError(Exception):
    """A failure the command reports to its user (no traceback) and exits non-zero on."""


class KafkaError(CliError):
    """A request answered with a Kafka error code."""

    def __init__(self, code: int, message: str | None = None, subject: str = "") -> None:
        self.code = code
        self.name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else f"error {code}"
        text = message or ERROR_MESSAGES.get(code) or self.name
        self.text = text
        super().__init__(f"{subject}: {text}" if subject else text)


class UnsupportedApi(CliError):
    """The broker does not advertise an api (or no version both sides speak)."""

    def __init__(self, api_key: int, node: str) -> None:
        self.api_key = api_key
        name = papi.api(api_key).name
        super().__init__(
            f"The broker at {node} does not support {name} (api {api_key}): "
            "UnsupportedVersionException: The version of API is not supported."
        )


def parse_address(entry: str) -> tuple[str, int]:
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise CliError(f"Invalid url in bootstrap.servers: {entry.strip()}")
    return host.strip("[]") or "127.0.0.1", int(port)


def retriable(code: int) -> bool:
    """Whether a client may send the request again unchanged (Kafka's RetriableException)."""
    return code in ErrorCode._value2member_map_ and ErrorCode(code).retriable


def check_error(code: int, message: str | None = None, subject: str = "") -> None:
    if code:
        raise KafkaError(code, message, subject)


class NodeConnection:
    """One socket to one broker with its negotiated api versions."""

    def __init__(
        self, address: tuple[str, int], timeout: float, client_id: str, security: ClientSecurity | None = None
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.client_id = client_id
        self._correlation = 0
        try:
            self._sock = socket.create_connection(address, timeout=timeout)
            if security is not None and security.ssl_context is not None:
                self._sock = security.ssl_context.wrap_socket(self._sock, server_hostname=address[0])
        except ssl.SSLError as exc:
            raise CliError(
                f"TLS handshake with {address[0]}:{address[1]} failed: {exc.reason or exc}"
            ) from exc
        except OSError as exc:
            raise CliError(
                f"Connection to node {address[0]}:{address[1]} could not be established ({exc})"
            ) from exc
        self.versions = self._negotiate()
        if security is not None and security.sasl is not None:
            self._authenticate(security.sasl)

    def _authenticate(self, settings: SaslClientSettings) -> None:
        """SaslHandshake v1 then SaslAuthenticate, as Kafka's SaslClientAuthenticator."""
        from broker.security.scram import ScramError
        from protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
        from protocol.messages.sasl_handshake_request import SaslHandshakeRequest

        handshake = self._roundtrip(SaslHandshakeRequest(settings.mechanism), 1)
        if handshake.error_code:
            raise CliError(
                f"Unexpected handshake request with client mechanism {settings.mechanism}, "
                f"enabled mechanisms are {handshake.mechanisms}"
            )
        exchange = settings.exchange()
        token: bytes | None = exchange.first()
        version = self.version_for(SaslAuthenticateRequest.API_KEY, 1)
        while token is not None:
            response = self._roundtrip(SaslAuthenticateRequest(token), 0 if version is None else version)
            if response.error_code:
                raise CliError(f"SaslAuthenticationException: {response.error_message}")
            try:
                token = exchange.respond(response.auth_bytes)
            except ScramError as exc:
                raise CliError(f"SaslAuthenticationException: {exc}") from None

    @property
    def label(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def _negotiate(self) -> dict[int, tuple[int, int]]:
        request = ApiVersionsRequest(client_software_name="brook-cli", client_software_version="0.1.0")
        response = self._roundtrip(request, 3)
        if response.error_code == ErrorCode.UNSUPPORTED_VERSION:
            response = self._roundtrip(request, 0)
        check_error(response.error_code, None, f"ApiVersions to {self.label}")
        return {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}

    def supports(self, api_key: int) -> bool:
        return self.version_for(api_key) is not None

    def version_for(self, api_key: int, cap: int | None = None) -> int | None:
        spec = papi.api(api_key)
        if api_key not in self.versions:
            return None
        low, high = self.versions[api_key]
        top = min(high, spec.max_version, VERSION_CAPS.get(api_key, spec.max_version))
        if cap is not None:
            top = min(top, cap)
        bottom = max(low, spec.min_version)
        return top if top >= bottom else None

    def call(self, request: Message, cap: int | None = None, timeout: float | None = None) -> Any:
        """Send ``request`` at the highest version both sides speak (at most ``cap``) and wait for
        its response (``timeout`` seconds instead of the client's, for JoinGroup's long wait)."""
        version = self.version_for(request.API_KEY, cap)
        if version is None:
            raise UnsupportedApi(request.API_KEY, self.label)
        if timeout is None:
            return self._roundtrip(request, version)
        self._sock.settimeout(timeout)
        try:
            return self._roundtrip(request, version)
        finally:
            self._sock.settimeout(self.timeout)

    def send_only(self, request: Message) -> None:
        """Send a request that gets no response (Produce with acks=0)."""
        version = self.version_for(request.API_KEY)
        if version is None:
            raise UnsupportedApi(request.API_KEY, self.label)
        self._correlation += 1
        try:
            self._sock.sendall(papi.encode_request(request, version, self._correlation, self.client_id))
        except OSError as exc:
            raise CliError(f"Connection to {self.label} failed: {exc}") from exc

    def _roundtrip(self, request: Message, version: int) -> Any:
        self._correlation += 1
        try:
            frame = papi.encode_request(request, version, self._correlation, self.client_id)
        except ProtocolError as exc:
            raise CliError(f"Cannot encode {papi.api(request.API_KEY).name} v{version}: {exc}") from exc
        try:
            self._sock.sendall(frame)
            (size,) = struct.unpack(">i", self._read(4))
            if not 0 < size <= MAX_RESPONSE:
                raise CliError(f"Bad response size {size} from {self.label}")
            correlation, body = papi.decode_response(self._read(size), request.API_KEY, version)
        except TimeoutError as exc:
            raise CliError(f"Timed out waiting for a response from {self.label}") from exc
        except OSError as exc:
            raise CliError(f"Connection to {self.label} failed: {exc}") from exc
        except ProtocolError as exc:  # the peer's bytes do not decode: an error, never a crash
            raise CliError(
                f"Bad response from {self.label} to {papi.api(request.API_KEY).name}: {exc}"
            ) from exc
        if correlation != self._correlation:
            raise CliError(
                f"Response to request {correlation} from {self.label}, expected {self._correlation}"
            )
        return body

    def _read(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise OSError("connection closed by the broker")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self._sock.close()


class KafkaClient:
    """Connections to a cluster found from ``bootstrap`` (``host:port[,host:port...]``)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        timeout: float = 30.0,
        client_id: str = "brook-cli",
        security: ClientSecurity | None = None,
    ) -> None:
        self.security = security
        self.addresses = [parse_address(e) for e in bootstrap.split(",") if e.strip()]
        if not self.addresses:
            raise CliError('Missing required argument "[bootstrap-server]"')
        self.timeout = timeout
        self.client_id = client_id
        self._bootstrap: NodeConnection | None = None
        self._nodes: dict[int, NodeConnection] = {}
        self._brokers: dict[int, tuple[str, int]] = {}

    # -- connections ----------------------------------------------------------------------------

    @property
    def any(self) -> NodeConnection:
        """A connection to the first bootstrap address that answers."""
        if self._bootstrap is None:
            failures = []
            for address in self.addresses:
                try:
                    self._bootstrap = NodeConnection(address, self.timeout, self.client_id, self.security)
                    break
                except CliError as exc:
                    failures.append(str(exc))
            else:
                raise CliError("No bootstrap server answered: " + "; ".join(failures))
        return self._bootstrap

    def node(self, node_id: int) -> NodeConnection:
        if node_id not in self._nodes:
            if node_id not in self._brokers:
                self.metadata([])
            address = self._brokers.get(node_id)
            if address is None:
                raise CliError(f"Broker {node_id} is not in the cluster's metadata")
            self._nodes[node_id] = NodeConnection(address, self.timeout, self.client_id, self.security)
        return self._nodes[node_id]

    def connection_to(self, node_id: int, host: str, port: int) -> NodeConnection:
        self._brokers.setdefault(node_id, (host, port))
        return self.node(node_id)

    # -- discovery ------------------------------------------------------------------------------

    def metadata(self, topics: Iterable[str] | None) -> Any:
        """Metadata for ``topics`` (None: every topic), without creating any."""
        wanted = None if topics is None else [MetadataRequestTopic(name=t) for t in topics]
        response = self.any.call(MetadataRequest(topics=wanted, allow_auto_topic_creation=False))
        self._brokers = {b.node_id: (b.host, b.port) for b in response.brokers}
        return response

    def brokers(self) -> dict[int, tuple[str, int]]:
        if not self._brokers:
            self.metadata([])
        return dict(self._brokers)

    def controller(self) -> NodeConnection:
        response = self.metadata([])
        if response.controller_id < 0:
            raise CliError("The cluster has no active controller")
        return self.node(response.controller_id)

    def coordinator(self, key: str, key_type: int = GROUP_KEY_TYPE) -> tuple[int, NodeConnection]:
        """(node id, connection) of the group (or transaction) coordinator of ``key``; retried
        while the coordinator is not available (its internal topic being created or loaded)."""

        def find() -> tuple[int, NodeConnection]:
            response = self.any.call(FindCoordinatorRequest(key=key, key_type=key_type))
            check_error(response.error_code, response.error_message, key)
            return response.node_id, self.connection_to(response.node_id, response.host, response.port)

        return self.retrying(find)

    def retrying(self, action: Callable[[], T]) -> T:
        """``action()``, again after Kafka's retry backoff while it fails with a retriable error,
        until the client's timeout."""
        deadline = time.monotonic() + self.timeout
        backoff = RETRY_BACKOFF_S
        while True:
            try:
                return action()
            except KafkaError as exc:
                if not retriable(exc.code) or time.monotonic() + backoff > deadline:
                    raise
            time.sleep(backoff)
            backoff = min(backoff * 2, RETRY_BACKOFF_MAX_S)

    def leaders(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> leader id of every partition of ``topics``; unknown topics raise."""
        response = self.metadata(list(topics))
        result: dict[tuple[str, int], int] = {}
        for topic in response.topics:
            check_error(topic.error_code, None, f"Topic {topic.name}")
            for p in topic.partitions:
                result[(topic.name, p.partition_index)] = p.leader_id
        return result

    def close(self) -> None:
        for conn in self._nodes.values():
            conn.close()
        if self._bootstrap is not None:
            self._bootstrap.close()
        self._nodes.clear()
        self._bootstrap = None

    def __enter__(self) -> KafkaClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
