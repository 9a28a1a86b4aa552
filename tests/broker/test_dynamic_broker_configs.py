"""Dynamic broker configs on the embedded node, driven in-process: AlterConfigs and
IncrementalAlterConfigs on BROKER resources, their checks and errors (Kafka's), their effect on
logs without overrides, DescribeConfigs sources and synonyms, persistence across a restart."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.app import Broker
from broker.config import ConfigSource
from broker.dynamic_configs import DEFAULT_ENTITY
from protocol.error_codes import ErrorCode
from protocol.messages.alter_configs_request import AlterableConfig, AlterConfigsRequest, AlterConfigsResource
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource
from protocol.messages.incremental_alter_configs_request import AlterableConfig as IncConfig
from protocol.messages.incremental_alter_configs_request import AlterConfigsResource as IncResource
from protocol.messages.incremental_alter_configs_request import IncrementalAlterConfigsRequest
from tests.broker.conftest import Caller, make_broker
from tests.broker.test_data_plane import batch, create, produce

BROKER = 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def alter(call: Caller, name: str, configs: dict[str, str | None], validate_only: bool = False):
    resource = AlterConfigsResource(BROKER, name, [AlterableConfig(k, v) for k, v in configs.items()])
    return call(AlterConfigsRequest([resource], validate_only), 2).responses[0]


def incremental(call: Caller, name: str, *ops: tuple[str, int, str | None], validate_only: bool = False):
    resource = IncResource(BROKER, name, [IncConfig(k, op, v) for k, op, v in ops])
    return call(IncrementalAlterConfigsRequest([resource], validate_only), 1).responses[0]


def describe(call: Caller, resource_type: int, name: str, keys: list[str] | None = None):
    request = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(resource_type, name, keys)], include_synonyms=True
    )
    return call(request, 4).results[0]


def retention_of(broker: Broker, topic: str) -> int:
    log = broker.log_manager.get_log(topic, 0)
    assert log is not None
    return log.config.retention_ms


def test_per_broker_change_applies_to_logs_without_override(call: Caller) -> None:
    create(call, "plain")
    create(call, "pinned")
    call(
        IncrementalAlterConfigsRequest(
            [IncResource(2, "pinned", [IncConfig("retention.ms", SET, "777")])], False
        ),
        1,
    )
    out = alter(call, "0", {"log.retention.ms": "60000", "log.segment.bytes": "2000000"})
    assert (out.error_code, out.error_message) == (0, None)
    broker = call.broker
    assert retention_of(broker, "plain") == 60000
    assert retention_of(broker, "pinned") == 777  # the topic override wins
    log = broker.log_manager.get_log("plain", 0)
    assert log is not None and log.config.segment_bytes == 2000000
    # A topic created afterwards gets the new default too.
    create(call, "later")
    assert retention_of(broker, "later") == 60000
    entry = describe(call, BROKER, "0", ["log.retention.ms"]).configs[0]
    assert (entry.value, entry.config_source, entry.read_only) == ("60000", 2, False)
    topic_entry = describe(call, 2, "plain", ["retention.ms"]).configs[0]
    assert topic_entry.value == "60000" and topic_entry.config_source == ConfigSource.DYNAMIC_BROKER_CONFIG
    first = topic_entry.synonyms[0]
    assert (first.name, first.value, first.source) == (
        "log.retention.ms",
        "60000",
        ConfigSource.DYNAMIC_BROKER_CONFIG,
    )


def test_per_broker_overrides_cluster_default_and_synonym_order(call: Caller) -> None:
    create(call, "t")
    assert alter(call, "", {"log.retention.ms": "5000"}).error_code == 0
    assert retention_of(call.broker, "t") == 5000
    assert alter(call, "0", {"log.retention.ms": "9000"}).error_code == 0
    assert retention_of(call.broker, "t") == 9000
    entry = describe(call, BROKER, "0", ["log.retention.ms"]).configs[0]
    # Kafka's order: per broker, cluster default, static, then the defaults of the synonyms.
    assert [(s.name, s.value, s.source) for s in entry.synonyms] == [
        ("log.retention.ms", "9000", ConfigSource.DYNAMIC_BROKER_CONFIG),
        ("log.retention.ms", "5000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]
    default = describe(call, BROKER, "").configs
    assert [(e.name, e.value, e.config_source) for e in default] == [
        ("log.retention.ms", "5000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    ]
    # Removing the per-broker value falls back to the cluster default.
    assert incremental(call, "0", ("log.retention.ms", DELETE, None)).error_code == 0
    assert retention_of(call.broker, "t") == 5000


def test_kafka_errors(call: Caller) -> None:
    out = alter(call, "0", {"broker.id": "3"})
    assert out.error_code == ErrorCode.INVALID_CONFIG
    assert out.error_message == (
        "Invalid config value for resource ConfigResource(type=BROKER, name='0'): "
        "Cannot update these configs dynamically: Set(broker.id)"
    )
    out = alter(call, "", {"listeners": "PLAINTEXT://:9093"})
    assert out.error_code == ErrorCode.INVALID_CONFIG
    assert "Cannot update these configs at default cluster level, broker id must be specified" in (
        out.error_message or ""
    )
    out = alter(call, "7", {"log.retention.ms": "1"})
    assert (out.error_code, out.error_message) == (
        ErrorCode.INVALID_REQUEST,
        "Unexpected broker id, expected 0, but received 7",
    )
    out = alter(call, "x", {"log.retention.ms": "1"})
    assert (out.error_code, out.error_message) == (
        ErrorCode.INVALID_REQUEST,
        "Broker id must be an integer, but it is: x",
    )
    out = alter(call, "0", {"log.retention.ms": "abc"})
    assert out.error_code == ErrorCode.INVALID_CONFIG and "log.retention.ms" in (out.error_message or "")
    out = alter(call, "0", {"listener.name.plaintext.ssl.keystore.password": "secret"})
    assert out.error_code == ErrorCode.INVALID_CONFIG
    assert (out.error_message or "").endswith("Password encoder secret not configured")
    out = alter(call, "", {"listener.name.plaintext.ssl.key.password": "secret"})
    assert out.error_code == ErrorCode.INVALID_CONFIG
    # Nothing was stored, least of all a password.
    assert call.broker.metadata.broker_configs == {}
    assert not call.broker.metadata.path.exists() or "secret" not in call.broker.metadata.path.read_text()


def test_validate_only_changes_nothing(call: Caller) -> None:
    before = call.broker.config
    assert alter(call, "0", {"log.retention.ms": "1000"}, validate_only=True).error_code == 0
    assert call.broker.config is before
    assert call.broker.metadata.broker_configs == {}


def test_incremental_list_operations(call: Caller) -> None:
    assert incremental(call, "", ("log.cleanup.policy", APPEND, "compact")).error_code == 0
    assert call.broker.metadata.broker_configs[DEFAULT_ENTITY] == {"log.cleanup.policy": "delete,compact"}
    assert incremental(call, "", ("log.cleanup.policy", SUBTRACT, "delete")).error_code == 0
    assert call.broker.config.log_cleanup_policy == ["compact"]
    out = incremental(call, "", ("log.retention.ms", APPEND, "5"))
    assert (out.error_code, out.error_message) == (
        ErrorCode.INVALID_CONFIG,
        "Config value append is not allowed for config key: log.retention.ms",
    )
    out = incremental(call, "", ("log.retention.ms", SUBTRACT, "5"))
    assert out.error_message == "Config value subtract is not allowed for config key: log.retention.ms"
    out = incremental(call, "", ("no.such.key", APPEND, "5"))
    assert (out.error_code, out.error_message) == (
        ErrorCode.INVALID_CONFIG,
        "Unknown config name: no.such.key",
    )


def test_message_max_bytes_refuses_a_larger_batch(call: Caller) -> None:
    create(call, "big")
    records = batch([b"x" * 3000])
    assert produce(call, "big", 0, records).error_code == 0
    assert alter(call, "0", {"message.max.bytes": "1000"}).error_code == 0
    assert produce(call, "big", 0, records).error_code == ErrorCode.MESSAGE_TOO_LARGE


def test_connection_limits_follow(call: Caller) -> None:
    assert alter(call, "", {"max.connections.per.ip": "7", "max.connections": "50"}).error_code == 0
    assert call.broker.config.max_connections_per_ip == 7
    assert call.broker.config.max_connections == 50


def test_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    broker = make_broker(data)
    call = Caller(broker)
    create(call, "t")
    assert alter(call, "", {"log.retention.ms": "5000"}).error_code == 0
    assert alter(call, "0", {"log.segment.bytes": "3000000"}).error_code == 0
    broker.log_manager.close()

    again = make_broker(data)
    try:
        assert retention_of(again, "t") == 5000
        log = again.log_manager.get_log("t", 0)
        assert log is not None and log.config.segment_bytes == 3000000
        assert again.config.source("log.retention.ms") is ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        assert again.config.source("log.segment.bytes") is ConfigSource.DYNAMIC_BROKER_CONFIG
    finally:
        again.log_manager.close()


@settings(max_examples=40, deadline=None)
@given(
    default=st.one_of(st.none(), st.integers(1, 10**9)),
    per_broker=st.one_of(st.none(), st.integers(1, 10**9)),
    static=st.one_of(st.none(), st.integers(1, 10**9)),
)
def test_precedence(tmp_path_factory: pytest.TempPathFactory, default, per_broker, static) -> None:
    """Per broker over cluster default over static over Kafka's default (7 days)."""
    overrides = {} if static is None else {"log.retention.ms": str(static)}
    broker = make_broker(tmp_path_factory.mktemp("p") / "data", **overrides)
    try:
        call = Caller(broker)
        if default is not None:
            assert alter(call, "", {"log.retention.ms": str(default)}).error_code == 0
        if per_broker is not None:
            assert alter(call, "0", {"log.retention.ms": str(per_broker)}).error_code == 0
        expected = next(v for v in (per_broker, default, static, 7 * 24 * 3600 * 1000) if v is not None)
        assert broker.log_manager.default_config.retention_ms == expected
    finally:
        broker.log_manager.close()


def test_background_threads_resize_the_disk_workers(call: Caller) -> None:
    disk = call.broker.disk
    assert alter(call, "", {"background.threads": "3"}).error_code == 0
    assert disk.threads == 3
    assert asyncio.run(disk.run(threading.current_thread)).name.startswith("brook-disk")


def test_stored_dynamic_config_that_no_longer_checks_is_skipped(tmp_path: Path) -> None:
    """A layer stored by hand (or by another version) that fails the checks is logged and
    skipped at start; the broker starts with its static configs."""
    data = tmp_path / "data"
    make_broker(data).log_manager.close()
    doc = (
        json.loads((data / "brook-metadata.json").read_text())
        if (data / "brook-metadata.json").exists()
        else {}
    )
    doc.setdefault("version", 1)
    doc.setdefault("topics", {})
    doc["broker_configs"] = {
        "<default>": {"log.retention.ms": "not a number"},
        "0": {"log.segment.bytes": "2000000"},
    }
    (data / "brook-metadata.json").write_text(json.dumps(doc))
    broker = make_broker(data)
    try:
        assert broker.config.source("log.retention.ms") is ConfigSource.DEFAULT_CONFIG
        assert broker.config.log_segment_bytes == 2000000
    finally:
        broker.log_manager.close()


def test_max_connections_per_ip_applies_to_the_next_connection(tmp_path: Path) -> None:
    """On a serving broker: once max.connections.per.ip=1 is set through the only connection, a
    second connection from the same address is closed at once; the first stays."""
    from broker.embedding import EmbeddedBroker
    from protocol import api as papi

    def call(sock: socket.socket, request: Any, version: int, correlation: int) -> Any:
        sock.sendall(papi.encode_request(request, version, correlation, "test"))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        got, body = papi.decode_response(_recv_exact(sock, size), request.API_KEY, version)
        assert got == correlation
        return body

    with (
        EmbeddedBroker({"log.dirs": str(tmp_path / "data")}) as broker,
        socket.create_connection((broker.host, broker.port), timeout=10) as first,
    ):
        resource = AlterConfigsResource(BROKER, "", [AlterableConfig("max.connections.per.ip", "1")])
        (result,) = call(first, AlterConfigsRequest([resource], False), 2, 1).responses
        assert result.error_code == 0, result
        with socket.create_connection((broker.host, broker.port), timeout=10) as second:
            assert second.recv(1) == b""  # accepted and closed: over the limit
        described = call(first, DescribeConfigsRequest([DescribeConfigsResource(BROKER, "", None)]), 4, 2)
        assert [(c.name, c.value) for c in described.results[0].configs] == [("max.connections.per.ip", "1")]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_replication_throttle_rates_apply_without_a_no_effect_warning(
    call: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    """The reassignment tool's broker-level throttles are acted on (the replication quotas take
    the new bounds), so the warning naming stored configs without effect leaves them out."""
    rates = {
        "leader.replication.throttled.rate": "100000",
        "follower.replication.throttled.rate": "200000",
        "replica.alter.log.dirs.io.max.bytes.per.second": "300000",
    }
    with caplog.at_level(logging.WARNING, logger="broker.dynamic_configs"):
        assert alter(call, "", {**rates, "num.io.threads": "8"}).error_code == 0
    quotas = call.broker.replica_manager.replication_quotas
    assert (quotas.leader.bound, quotas.follower.bound, quotas.alter_log_dirs.bound) == (
        100000,
        200000,
        300000,
    )
    [warning] = [r.getMessage() for r in caplog.records if "have no effect" in r.getMessage()]
    assert warning.rpartition(": ")[2] == "num.io.threads"
