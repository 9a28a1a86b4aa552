"""ApiVersions (key 18), versions 0-4.

Advertises exactly the apis and versions this broker serves (the handler registry), so a client
never negotiates into a gap: LeaderAndIsr, StopReplica and UpdateMetadata only in cluster mode,
as Kafka's ZooKeeper-mode brokers list them and its KRaft brokers do not. v3+ requests name the
client software; Kafka rejects names that are not of the form
``[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?`` with INVALID_REQUEST. A request in a version
above 4 is answered by the connection layer with a v0 body, UNSUPPORTED_VERSION and ApiVersions'
own range (:func:`unsupported_version_response`, as Kafka), so clients fall back.
"""

from __future__ import annotations

import re

from broker.handlers.base import Handler, RequestContext
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4
_SOFTWARE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def advertised(cluster_mode: bool = False) -> list[ApiVersion]:
    """The served apis; LeaderAndIsr, StopReplica and UpdateMetadata only in cluster mode."""
    from broker.handlers import handlers_for

    served = handlers_for(cluster_mode)
    return [ApiVersion(h.api_key, h.min_version, h.max_version) for _, h in sorted(served.items())]


def unsupported_version_response() -> ApiVersionsResponse:
    """Kafka lists only ApiVersions' own range here: enough for the client to retry."""
    return ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=[ApiVersion(API_KEY, MIN_VERSION, MAX_VERSION)]
    )


def handle(ctx: RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse:
    if ctx.version >= 3 and not (
        _SOFTWARE.match(request.client_software_name) and _SOFTWARE.match(request.client_software_version)
    ):
        return ApiVersionsResponse(error_code=ErrorCode.INVALID_REQUEST)
    return ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=advertised(ctx.broker.cluster_mode))


HANDLER = Handler(API_KEY, MIN_VERSION, MAX_VERSION, handle)
