"""The Brook broker: network layer, request handlers, coordinators.

``broker.embedded(...)`` (and ``broker.embedded_async``, ``broker.EmbeddedBroker``) start a broker
inside the calling process, for tests: see :mod:`broker.embedding`. They are imported on first
use, so ``import broker`` stays cheap (the pytest plugin imports it at collection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.embedding import EmbeddedBroker, embedded, embedded_async

__all__ = ["EmbeddedBroker", "embedded", "embedded_async"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from broker import embedding

        return getattr(embedding, name)
    raise AttributeError(f"module 'broker' has no attribute {name!r}")
