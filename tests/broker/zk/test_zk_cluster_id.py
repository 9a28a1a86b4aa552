"""The cluster id in ZooKeeper against each log dir's meta.properties."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.cluster.meta_properties import ensure_meta_properties
from broker.cluster.zk.client import KafkaZkClient, ZkSettings
from broker.cluster.zk.cluster_id import check_cluster_id
from broker.cluster.zk.errors import InconsistentClusterIdError
from broker.types import BrokerId
from tests.broker.zk.conftest import run


def test_matching_and_new_dirs_pass(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    recorded = ensure_meta_properties(dirs[:1], BrokerId(1))
    check_cluster_id(recorded, dirs)  # b has no meta.properties yet: fine


def test_a_dir_of_another_cluster_is_refused_with_kafkas_message(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    recorded = ensure_meta_properties([log_dir], BrokerId(1))
    with pytest.raises(InconsistentClusterIdError) as info:
        check_cluster_id("ZkClusterIdAAAAAAAAAAA", [log_dir])
    assert str(info.value) == (
        f"Invalid cluster.id in: {log_dir / 'meta.properties'}. "
        f"Expected ZkClusterIdAAAAAAAAAAA, but read {recorded}"
    )


def test_with_the_id_read_from_zookeeper(connect: str, tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    recorded = ensure_meta_properties([log_dir], BrokerId(1))

    async def body() -> None:
        client = await KafkaZkClient.connect(ZkSettings(connect))
        try:
            cluster_id = await client.create_or_get_cluster_id("SomeOtherClusterIdAAAA")
        finally:
            await client.close()
        with pytest.raises(InconsistentClusterIdError, match="Expected SomeOtherClusterIdAAAA"):
            check_cluster_id(cluster_id, [log_dir])
        assert recorded != cluster_id

    run(body())
