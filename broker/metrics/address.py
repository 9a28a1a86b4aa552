"""``brook.metrics.listener``: ``http://host:port`` (empty turns the endpoint off)."""

from __future__ import annotations

from urllib.parse import urlsplit


def parse_metrics_listener(value: str) -> tuple[str, int] | None:
    """``(host, port)`` to serve ``/metrics`` on, or None when ``value`` is empty.

    Raises ValueError with the reason for anything else than ``http://host:port`` (port 0
    picks a free one; an empty host or ``0.0.0.0`` listens on every interface)."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "http":
        raise ValueError(f"{value!r}: the metrics listener must be http://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r}: give only http://host:port (the path is always /metrics)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    if port is None:
        raise ValueError(f"{value!r}: the metrics listener needs a port")
    return parts.hostname or "0.0.0.0", port
