"""Dynamic broker configs in a three-broker ZooKeeper-mode cluster (real processes, a real
ZooKeeper): the cluster-wide default written through one broker lands in
``/config/brokers/<default>`` as Kafka's JSON with a ``/config/changes`` notification and is applied
by the others; a per-broker value written through kafka-python lands in ``/config/brokers/<id>``
and applies to that broker only; a broker restarted reads them back."""

from __future__ import annotations

import json
from typing import Any

from compat_tests.clients.admin import unique_topic
from compat_tests.cluster import BrokerCluster
from compat_tests.harness import wait_until
from compat_tests.test_dynamic_configs import raw_call, set_default
from protocol.error_codes import ErrorCode
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource

WAIT = 30.0
DYNAMIC_BROKER, DYNAMIC_DEFAULT, DEFAULT = 2, 3, 5


def described(address: str, resource_type: int, name: str, key: str) -> tuple[str | None, int]:
    """(value, source) of one config as the broker at ``address`` describes it ((None, 0) when
    not listed: the default resource lists only what is set)."""
    request = DescribeConfigsRequest([DescribeConfigsResource(resource_type, name, [key])])
    (result,) = raw_call(address, request, 4).results
    assert result.error_code == 0, result
    if not result.configs:
        return None, 0
    (entry,) = result.configs
    return entry.value, entry.config_source


def znode(cluster: BrokerCluster, path: str) -> bytes:
    data, _ = cluster.zk.get(path)
    return bytes(data)


def change_paths(cluster: BrokerCluster) -> list[Any]:
    return [
        json.loads(znode(cluster, f"/config/changes/{c}"))
        for c in sorted(cluster.zk.get_children("/config/changes"))
    ]


def test_broker_configs_through_zookeeper(fresh_cluster: BrokerCluster) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    cluster = fresh_cluster
    one, two, three = (cluster.bootstrap_of(i) for i in (1, 2, 3))

    topic = unique_topic("dyn")
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(topic, 3, 3)], timeout_ms=30_000)
    finally:
        admin.close()
    # The cluster-wide default, through broker 1: Kafka's znode and notification, byte for byte.
    set_default(one, {"log.retention.ms": "7200000"})
    assert (
        znode(cluster, "/config/brokers/<default>")
        == b'{"version":1,"config":{"log.retention.ms":"7200000"}}'
    )
    assert {"version": 2, "entity_path": "brokers/<default>"} in change_paths(cluster)
    for address in (one, two, three):
        wait_until(
            lambda a=address: described(a, 4, "", "log.retention.ms") == ("7200000", DYNAMIC_DEFAULT),
            WAIT,
            message=f"the default applied on {address}",
        )
    # Applied to a topic without an override, as each broker describes it.
    for address in (one, two, three):
        wait_until(
            lambda a=address: described(a, 2, topic, "retention.ms") == ("7200000", DYNAMIC_DEFAULT),
            WAIT,
            message=f"the topic default on {address}",
        )

    # Per broker, through kafka-python's AlterConfigs (sent to broker 2 itself).
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30_000)
    try:
        resource = ConfigResource(ConfigResourceType.BROKER, "2", configs={"log.segment.bytes": "2000000"})
        admin.alter_configs([resource], incremental=False)
    finally:
        admin.close()
    assert znode(cluster, "/config/brokers/2") == b'{"version":1,"config":{"log.segment.bytes":"2000000"}}'
    assert {"version": 2, "entity_path": "brokers/2"} in change_paths(cluster)
    wait_until(
        lambda: described(two, 4, "2", "log.segment.bytes") == ("2000000", DYNAMIC_BROKER),
        WAIT,
        message="broker 2's own value applied",
    )
    assert described(three, 4, "3", "log.segment.bytes") == ("1073741824", DEFAULT)

    # Another broker's id is refused as Kafka refuses it.
    from protocol.messages.alter_configs_request import (
        AlterableConfig,
        AlterConfigsRequest,
        AlterConfigsResource,
    )

    request = AlterConfigsRequest(
        [AlterConfigsResource(4, "2", [AlterableConfig("log.segment.bytes", "1")])], False
    )
    (refused,) = raw_call(three, request, 2).responses
    assert (refused.error_code, refused.error_message) == (
        ErrorCode.INVALID_REQUEST,
        "Unexpected broker id, expected 3, but received 2",
    )

    # A restarted broker reads both layers back from ZooKeeper before it serves anything.
    cluster.restart(2)
    assert described(two, 4, "2", "log.segment.bytes") == ("2000000", DYNAMIC_BROKER)
    assert described(two, 4, "2", "log.retention.ms") == ("7200000", DYNAMIC_DEFAULT)
