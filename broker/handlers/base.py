"""What every request handler sees and provides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from protocol.message import Message
from protocol.messages.request_header import RequestHeader
from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from broker.app import Broker
    from broker.network.connection import Connection
    from broker.security.principal import SecurityContext

Result = Message | None | Awaitable[Message | None]


@dataclass(slots=True)
class RequestContext:
    """The request's header, the connection it came on and the broker's services."""

    broker: Broker
    conn: Connection
    header: RequestHeader
    api_key: int
    version: int

    @property
    def client_id(self) -> str | None:
        return self.header.client_id

    @property
    def peer(self) -> str:
        return self.conn.peer

    @property
    def security(self) -> SecurityContext:
        """Listener, security protocol and principal of the connection: what authorization and
        quotas check."""
        return self.conn.security


@dataclass(frozen=True, slots=True)
class Handler:
    """One api served: its versions (advertised by ApiVersions exactly) and its function."""

    api_key: int
    min_version: int
    max_version: int
    handle: Callable[[RequestContext, Any], Result]
