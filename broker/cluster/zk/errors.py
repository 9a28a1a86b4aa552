"""Errors of Brook's ZooKeeper layer, named and worded after Kafka's where Kafka has one.

ZooKeeper's own outcomes (no node, node exists, bad version) stay kazoo's exceptions, re-exported
here so that callers import every error from one place.
"""

from __future__ import annotations

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

__all__ = [
    "BadVersionError",
    "BrokerIdInUseError",
    "ControllerMovedError",
    "InconsistentClusterIdError",
    "NoNodeError",
    "NodeExistsError",
    "ProducerIdsExhaustedError",
    "SecureAclsUnavailableError",
    "ZkConnectionTimeoutError",
    "ZkError",
    "ZkUnavailableError",
]


class ZkError(Exception):
    pass


class ZkConnectionTimeoutError(ZkError):
    """Kafka's ZooKeeperClientTimeoutException: no connection within zookeeper.connection.timeout.ms."""


class ZkUnavailableError(ZkError):
    """A request could not complete because ZooKeeper stayed unreachable past the request deadline."""


class ControllerMovedError(ZkError):
    """Kafka's ControllerMovedException: the /controller_epoch zkVersion check failed."""


class BrokerIdInUseError(NodeExistsError):  # type: ignore[misc]
    """The broker znode exists and belongs to another live session (a duplicate broker.id)."""


class SecureAclsUnavailableError(ZkError):
    """zookeeper.set.acl=true without ZooKeeper authentication, refused as Kafka does."""


class ProducerIdsExhaustedError(ZkError):
    pass


class InconsistentClusterIdError(ZkError):
    """The cluster id in ZooKeeper differs from the one recorded in a log dir's meta.properties."""
