"""Dynamic broker configs of a ``python -m broker`` process through stock admin clients: a per-broker
change with kafka-python (AlterConfigs), a cluster-wide default with confluent-kafka
(IncrementalAlterConfigs), their effect without a restart (a new topic's retention, a batch larger
than the new ``message.max.bytes`` refused), precedence, and all of it again after a restart; the
request log switched on through BROKER_LOGGER and written in Kafka's layout."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.harness import BrokerProcess, wait_until

TIMEOUT = 30.0


def _confluent(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _describe(bootstrap: str, resource_type: str, name: str) -> dict[str, Any]:
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(getattr(ResourceType, resource_type), name)
    admin = _confluent(bootstrap)  # referenced until the result is in
    return dict(admin.describe_configs([resource])[resource].result(timeout=TIMEOUT))


def describe_default(bootstrap: str) -> dict[str, tuple[str | None, int]]:
    """DescribeConfigs of the BROKER resource "" (the stock clients refuse an empty name)."""
    from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource

    request = DescribeConfigsRequest([DescribeConfigsResource(4, "", None)], include_synonyms=True)
    (result,) = raw_call(bootstrap.split(",")[0], request, 4).results
    assert result.error_code == 0, result
    return {c.name: (c.value, c.config_source) for c in result.configs}


def set_default(bootstrap: str, configs: dict[str, str]) -> None:
    """IncrementalAlterConfigs on the BROKER resource "" (the cluster-wide default), as
    ``kafka-configs.sh --entity-type brokers --entity-default --alter`` sends it: the stock Python
    clients refuse an empty broker name, so the request is sent with Brook's codec."""
    from protocol.messages.incremental_alter_configs_request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )

    resource = AlterConfigsResource(4, "", [AlterableConfig(k, 0, v) for k, v in configs.items()])
    response = raw_call(bootstrap.split(",")[0], IncrementalAlterConfigsRequest([resource], False), 1)
    (result,) = response.responses
    assert result.error_code == 0, result


def raw_call(address: str, request: Any, version: int) -> Any:
    from compat_tests.clients.raw import read_frame
    from protocol import api as papi

    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(papi.encode_request(request, version, 1, "compat"))
        correlation, body = papi.decode_response(read_frame(sock), request.API_KEY, version)
    assert correlation == 1
    return body


def _produce(bootstrap: str, topic: str, size: int) -> Exception | None:
    """Send one record of ``size`` bytes (kafka-python, no client-side size limit below it)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=10_000_000, retries=0, request_timeout_ms=10_000
    )
    try:
        producer.send(topic, b"x" * size).get(timeout=TIMEOUT)
    except Exception as exc:  # the broker's refusal, as the client raises it
        return exc
    finally:
        producer.close(timeout=10)
    return None


def test_dynamic_configs_apply_at_once_and_survive_a_restart(fresh_broker: BrokerProcess) -> None:
    from confluent_kafka.admin import ConfigSource
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    broker = fresh_broker.start()
    bootstrap = broker.bootstrap
    before = create_topic(bootstrap, unique_topic("before"), 1, {})

    # Per broker, kafka-python's legacy AlterConfigs.
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        resource = ConfigResource(ConfigResourceType.BROKER, "0", configs={"log.retention.ms": "3600000"})
        admin.alter_configs([resource], incremental=False)
    finally:
        admin.close()
    # Cluster-wide default, confluent-kafka's IncrementalAlterConfigs; the per-broker value wins.
    set_default(bootstrap, {"log.retention.ms": "7200000", "message.max.bytes": "20000"})

    def check() -> None:
        described = _describe(bootstrap, "BROKER", "0")
        retention = described["log.retention.ms"]
        assert (retention.value, retention.source) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        # (confluent-kafka keys synonyms by name, so the two log.retention.ms layers are checked
        # in-process: tests/broker/test_dynamic_broker_configs.py)
        limit = described["message.max.bytes"]
        assert (limit.value, limit.source) == ("20000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
        assert describe_default(bootstrap) == {
            "log.retention.ms": ("7200000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
            "message.max.bytes": ("20000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        }
        for topic in (before, create_topic(bootstrap, unique_topic("after"), 1, {})):
            topic_retention = _describe(bootstrap, "TOPIC", topic)["retention.ms"]
            assert topic_retention.value == "3600000"
            assert topic_retention.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        assert _produce(bootstrap, before, 10_000) is None
        refused = _produce(bootstrap, before, 30_000)
        assert refused is not None and "MessageSizeTooLarge" in type(refused).__name__ + repr(refused)

    check()
    assert broker.stop() == 0, broker.log_tail()
    stored = json.loads((broker.data_dir / "brook-metadata.json").read_text())
    assert stored["broker_configs"] == {
        "0": {"log.retention.ms": "3600000"},
        "<default>": {"log.retention.ms": "7200000", "message.max.bytes": "20000"},
    }
    broker.start()
    check()


def test_refusals_are_kafkas(broker: BrokerProcess) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    admin = _confluent(broker.bootstrap)
    cases = [
        ("0", "broker.id", "5", "Cannot update these configs dynamically: Set(broker.id)"),
        ("0", "listener.name.plaintext.ssl.key.password", "pw", "Password encoder secret not configured"),
    ]
    for name, key, value, message in cases:
        entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.BROKER, name, incremental_configs=[entry])
        with pytest.raises(KafkaException) as failure:
            admin.incremental_alter_configs([resource])[resource].result(timeout=TIMEOUT)
        error = failure.value.args[0]
        assert error.name() == "INVALID_CONFIG" and message in error.str(), error


def test_request_log_switched_on_through_broker_logger(broker: BrokerProcess) -> None:
    """kafka-python (confluent-kafka has no BROKER_LOGGER resource) describes the request logger
    at Kafka's WARN, switches it to DEBUG, and the next request is in the log in Kafka's layout."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30_000)

    def set_level(level: str) -> None:
        resource = ConfigResource(
            ConfigResourceType.BROKER_LOGGER, "0", configs={"kafka.request.logger": level}
        )
        admin.alter_configs([resource], incremental=True, raise_on_unknown=False)

    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER_LOGGER, "0")], config_filter="all"
        )
        assert described["broker_logger"]["0"]["kafka.request.logger"]["value"] == "WARN"
        assert "Completed request:" not in broker.log_text()
        set_level("DEBUG")
        try:
            topic = create_topic(broker.bootstrap, unique_topic("logged"), 1, {})
            wait_until(lambda: f'"name":"{topic}"' in broker.log_text(), 10, message="the request logged")
            line = next(
                ln
                for ln in broker.log_text().splitlines()
                if "CREATE_TOPICS" in ln and f'"name":"{topic}"' in ln
            )
            # [2026-12-03 10:15:00,123] DEBUG Completed request:{...} (kafka.request.logger)
            assert line.startswith("[") and "] DEBUG Completed request:{" in line
            assert line.endswith(" (kafka.request.logger)")
            desc = json.loads(line[line.index("{") : line.rindex("}") + 1])
            assert desc["requestHeader"]["requestApiKeyName"] == "CREATE_TOPICS"
            assert desc["response"]["topics"][0]["errorCode"] == 0
            assert desc["principal"] == "User:ANONYMOUS" and desc["listener"] == "PLAINTEXT"
        finally:
            set_level("WARN")
    finally:
        admin.close()
