"""The Brook broker: network layer, request handlers, coordinators.

``broker.embedded(...)`` (and ``broker.embedded_async``, ``broker.EmbeddedBroker``) start a broker
inside the calling process, for tests: see :mod:`broker.embedding`. They are imported on first
use, so ``import broker`` stays cheap (the pytest plugin imports it at collection).
``broker.embedded_cluster(brokers=3)`` (``broker.EmbeddedCluster``) starts N ZooKeeper-mode
brokers in the process: see :mod:`broker.embedding_cluster`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.embedding import EmbeddedBroker, embedded, embedded_async
    from broker.embedding_cluster import EmbeddedCluster, embedded_cluster

__all__ = ["EmbeddedBroker", "EmbeddedCluster", "embedded", "embedded_async", "embedded_cluster"]
_CLUSTER_NAMES = ("EmbeddedCluster", "embedded_cluster")


def __getattr__(name: str) -> Any:
    if name in _CLUSTER_NAMES:
        from broker import embedding_cluster

        return getattr(embedding_cluster, name)
    if name in __all__:
        from broker import embedding

        return getattr(embedding, name)
    raise AttributeError(f"module 'broker' has no attribute {name!r}")
