"""``meta.properties`` in every log directory, as Kafka writes it in ZooKeeper mode.

It ties the directories to one cluster and one broker id: a directory written by another cluster
or broker is refused at start (Kafka's InconsistentClusterIdException / InconsistentBrokerIdException),
so data is never silently mixed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from broker.types import BrokerId
from storage.checkpoint import encode_topic_id

META_PROPERTIES = "meta.properties"


class MetaPropertiesError(Exception):
    pass


def _read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def read_meta_properties(path: Path) -> dict[str, str]:
    """The key/values of one meta.properties file."""
    return _read(path)


def _write(path: Path, cluster_id: str, node_id: BrokerId, fsync: Callable[[int], None]) -> None:
    stamp = time.strftime("%a %b %d %H:%M:%S %Z %Y")
    text = f"#\n#{stamp}\ncluster.id={cluster_id}\nversion=0\nbroker.id={node_id}\n"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        fsync(out.fileno())
    os.replace(tmp, path)


def new_cluster_id() -> str:
    """A random cluster id in Kafka's form (base64url of a UUID, 22 characters)."""
    return encode_topic_id(uuid.uuid4())


def recorded_identity(log_dirs: list[Path]) -> tuple[str | None, int | None]:
    """The cluster id and broker id recorded in the log dirs' meta.properties (None when absent)."""
    cluster_id: str | None = None
    broker_id: int | None = None
    for d in log_dirs:
        path = d / META_PROPERTIES
        if not path.exists():
            continue
        values = _read(path)
        cluster_id = cluster_id or values.get("cluster.id") or None
        recorded = values.get("broker.id", values.get("node.id"))
        if broker_id is None and recorded is not None:
            broker_id = int(recorded)
    return cluster_id, broker_id


def ensure_meta_properties(
    log_dirs: list[Path],
    node_id: BrokerId,
    cluster_id: str | None = None,
    *,
    fsync: Callable[[int], None] = os.fsync,
) -> str:
    """Return the cluster id recorded in the log dirs; dirs without meta.properties get one with
    ``cluster_id`` (ZooKeeper's ``/cluster/id`` in cluster mode), or a new id the first time.
    ``fsync``: the broker's file system's (a no-op for an embedded broker's temporary data)."""
    found: dict[Path, dict[str, str]] = {}
    for d in log_dirs:
        path = d / META_PROPERTIES
        if path.exists():
            found[d] = _read(path)
    cluster_ids = {v.get("cluster.id") for v in found.values() if v.get("cluster.id")}
    if len(cluster_ids) > 1:
        raise MetaPropertiesError(
            f"log directories belong to different clusters: {sorted(c for c in cluster_ids if c)}"
        )
    for d, values in found.items():
        recorded = values.get("broker.id", values.get("node.id"))
        if recorded is not None and int(recorded) != node_id:
            raise MetaPropertiesError(
                f"{d / META_PROPERTIES} says broker.id={recorded} but this broker is {node_id}; "
                "point log.dirs elsewhere or fix broker.id"
            )
    if cluster_ids:
        cluster_id = cluster_ids.pop()
    elif cluster_id is None:
        cluster_id = new_cluster_id()
    for d in log_dirs:
        if d not in found:
            _write(d / META_PROPERTIES, cluster_id, node_id, fsync)
    return cluster_id
