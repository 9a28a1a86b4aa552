"""The request log: Kafka's ``kafka.request.logger`` at DEBUG, one line per completed request.

As Kafka 3.9's RequestChannel (``RequestConvertToJson.requestDescMetrics``), the line is
``Completed request:`` followed by one JSON object: ``isForwarded``, ``requestHeader`` (with
``requestApiKeyName``), ``request``, ``response``, ``connection``, the timings in ms
(``totalTimeMs``, ``requestQueueTimeMs``, ``localTimeMs``, ``remoteTimeMs``, ``throttleTimeMs``,
``responseQueueTimeMs``, ``sendTimeMs``), ``securityProtocol``, ``principal``, ``listener`` and
``clientInformation``. Request and response bodies are the messages' fields with Kafka's JSON names
(camelCase); record data appears as its size (``recordsSizeInBytes``), as Kafka logs it.

Brook's timings: the request is taken as queued when it is dispatched (no request queue:
``requestQueueTimeMs`` is 0); ``localTimeMs`` is the handler's own run, ``remoteTimeMs`` the wait
of an asynchronous handler (purgatory, ZooKeeper, the disk), ``responseQueueTimeMs`` the wait for
the answers before it on the connection. The line is written when the response is handed to the
socket, so ``sendTimeMs`` is 0.

Cost when off: the server asks ``enabled()`` once per request (a cached level check); nothing
else runs. The level is switched at run time through BROKER_LOGGER (:mod:`broker.loggers`).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from typing import Any

from protocol.message import Struct

REQUEST_LOGGER_NAME = "kafka.request.logger"
#: Created at import so that it exists for BROKER_LOGGER (Kafka: "Logger X does not exist!").
request_logger = logging.getLogger(REQUEST_LOGGER_NAME)

UNKNOWN_SOFTWARE = "unknown"  # Kafka's ClientInformation.UNKNOWN_NAME_OR_VERSION


def enabled() -> bool:
    return request_logger.isEnabledFor(logging.DEBUG)


class RequestLogEntry:
    """What one request's log line needs, filled as the request goes through the broker."""

    __slots__ = (
        "api_key",
        "api_name",
        "client_id",
        "completed_ns",
        "connection_id",
        "correlation_id",
        "listener",
        "local_done_ns",
        "principal",
        "request",
        "response",
        "security_protocol",
        "software",
        "started_ns",
        "version",
    )

    def __init__(
        self,
        api_key: int,
        api_name: str,
        version: int,
        correlation_id: int,
        client_id: str | None,
        request: Any,
        connection_id: str,
        listener: str,
        software: tuple[str, str],
        security_protocol: str = "PLAINTEXT",
        principal: str = "User:ANONYMOUS",
    ) -> None:
        self.api_key = api_key
        self.api_name = api_name
        self.version = version
        self.correlation_id = correlation_id
        self.client_id = client_id
        self.request = request
        self.connection_id = connection_id
        self.listener = listener
        self.software = software
        self.security_protocol = security_protocol
        self.principal = principal
        self.started_ns = time.monotonic_ns()
        self.local_done_ns = 0
        self.completed_ns = 0
        self.response: Any = None

    def handler_returned(self) -> None:
        self.local_done_ns = time.monotonic_ns()

    def completed(self, response: Any) -> None:
        self.completed_ns = time.monotonic_ns()
        if not self.local_done_ns:
            self.local_done_ns = self.completed_ns
        self.response = response

    def line(self, now_ns: int | None = None) -> str:
        """The log line (Kafka's text after the log4j prefix)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        completed = self.completed_ns or now_ns
        local_done = self.local_done_ns or completed
        desc = {
            "isForwarded": False,
            "requestHeader": {
                "requestApiKey": self.api_key,
                "requestApiVersion": self.version,
                "correlationId": self.correlation_id,
                "clientId": self.client_id,
                "requestApiKeyName": _api_key_name(self.api_name),
            },
            "request": to_json(self.request) if self.request is not None else "",
            "response": to_json(self.response) if self.response is not None else "",
            "connection": self.connection_id,
            "totalTimeMs": _ms(now_ns - self.started_ns),
            "requestQueueTimeMs": 0.0,
            "localTimeMs": _ms(local_done - self.started_ns),
            "remoteTimeMs": _ms(completed - local_done),
            "throttleTimeMs": 0,
            "responseQueueTimeMs": _ms(now_ns - completed),
            "sendTimeMs": 0.0,
            "securityProtocol": self.security_protocol,
            "principal": self.principal,
            "listener": self.listener,
            "clientInformation": {"softwareName": self.software[0], "softwareVersion": self.software[1]},
        }
        return "Completed request:" + json.dumps(desc, separators=(",", ":"))

    def emit(self) -> None:
        request_logger.debug("%s", self.line())


def _ms(ns: int) -> float:
    return max(ns, 0) / 1e6


def _api_key_name(name: str) -> str:
    """``ApiVersions`` -> ``API_VERSIONS`` (Kafka's ApiKeys enum names)."""
    out = []
    for i, ch in enumerate(name):
        word_start = not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())
        if ch.isupper() and i and word_start:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_json(value: Any) -> Any:
    """A message (or part of one) as Kafka's generated JSON converters write it."""
    if isinstance(value, Struct):
        out: dict[str, Any] = {}
        for name in type(value).__slots__:
            field = getattr(value, name, None)
            if _is_data(field):
                out[_camel(name) + "SizeInBytes"] = _size(field)
            else:
                out[_camel(name)] = to_json(field)
        return out
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, uuid.UUID):
        return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if _is_data(value):
        return _size(value)
    return str(value)


def _is_data(value: Any) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) or hasattr(value, "fd")


def _size(value: Any) -> int:
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, bytes | bytearray):
        return len(value)
    return int(getattr(value, "length", 0))
