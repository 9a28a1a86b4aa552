"""The start-up check that a broker's log dirs belong to the cluster in ZooKeeper.

Kafka 3.9 (KafkaServer.startup -> MetaPropertiesEnsemble.verify with the id from /cluster/id)
refuses to start when a log dir's meta.properties names another cluster; the message is Kafka's.
Earlier Kafka versions raised InconsistentClusterIdException for the same case, hence the name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from broker.cluster.meta_properties import META_PROPERTIES, read_meta_properties
from broker.cluster.zk.errors import InconsistentClusterIdError


def check_cluster_id(zk_cluster_id: str, log_dirs: Iterable[Path]) -> None:
    """Raise InconsistentClusterIdError if a log dir's meta.properties has another cluster.id.

    Dirs without meta.properties, or without a cluster.id in it, pass (they are new).
    """
    for log_dir in log_dirs:
        path = log_dir / META_PROPERTIES
        if not path.exists():
            continue
        recorded = read_meta_properties(path).get("cluster.id")
        if recorded is not None and recorded != zk_cluster_id:
            raise InconsistentClusterIdError(
                f"Invalid cluster.id in: {path}. Expected {zk_cluster_id}, but read {recorded}"
            )
