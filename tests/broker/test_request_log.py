"""BROKER_LOGGER levels (IncrementalAlterConfigs / DescribeConfigs, Kafka's RuntimeLoggerManager
checks) and the request log: off by default, switched on at run time through a stock admin client
against a real (embedded) broker, then a request logged in Kafka's JSON layout."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from broker.embedding import EmbeddedBroker
from broker.loggers import level_name
from broker.request_log import REQUEST_LOGGER_NAME, RequestLogEntry, _api_key_name, to_json
from protocol.error_codes import ErrorCode
from protocol.messages.describe_configs_request import DescribeConfigsRequest, DescribeConfigsResource
from protocol.messages.incremental_alter_configs_request import AlterableConfig as IncConfig
from protocol.messages.incremental_alter_configs_request import AlterConfigsResource as IncResource
from protocol.messages.incremental_alter_configs_request import IncrementalAlterConfigsRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.broker.conftest import Caller

BROKER_LOGGER = 8
SET, DELETE, APPEND = 0, 1, 2


@pytest.fixture(autouse=True)
def restore_request_logger() -> Iterator[None]:
    logger = logging.getLogger(REQUEST_LOGGER_NAME)
    level = logger.level
    yield
    logger.setLevel(level)


def alter_logger(call: Caller, name: str, *ops: tuple[str, int, str | None], validate_only: bool = False):
    resource = IncResource(BROKER_LOGGER, name, [IncConfig(k, op, v) for k, op, v in ops])
    return call(IncrementalAlterConfigsRequest([resource], validate_only), 1).responses[0]


def test_set_and_delete_a_logger_level(call: Caller) -> None:
    logger = logging.getLogger(REQUEST_LOGGER_NAME)
    out = alter_logger(call, "0", (REQUEST_LOGGER_NAME, SET, "DEBUG"), validate_only=True)
    assert out.error_code == 0 and not logger.isEnabledFor(logging.DEBUG)
    assert alter_logger(call, "0", (REQUEST_LOGGER_NAME, SET, "DEBUG")).error_code == 0
    assert logger.isEnabledFor(logging.DEBUG)
    request = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(BROKER_LOGGER, "0", [REQUEST_LOGGER_NAME])]
    )
    (entry,) = call(request, 4).results[0].configs
    assert (entry.name, entry.value, entry.config_source, entry.read_only) == (
        REQUEST_LOGGER_NAME,
        "DEBUG",
        6,
        False,
    )
    assert alter_logger(call, "0", (REQUEST_LOGGER_NAME, DELETE, None)).error_code == 0
    assert logger.level == logging.NOTSET


@pytest.mark.parametrize(
    ("name", "ops", "code", "message"),
    [
        (
            "0",
            [("no.such.logger", SET, "INFO")],
            ErrorCode.INVALID_CONFIG,
            "Logger no.such.logger does not exist!",
        ),
        (
            "0",
            [(REQUEST_LOGGER_NAME, SET, "LOUD")],
            ErrorCode.INVALID_CONFIG,
            f"Cannot set the log level of {REQUEST_LOGGER_NAME} to LOUD as it is not a supported log level. "
            "Valid log levels are ALL, DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN",
        ),
        (
            "0",
            [("root", DELETE, None)],
            ErrorCode.INVALID_REQUEST,
            "Removing the log level of the root logger is not allowed",
        ),
        (
            "0",
            [(REQUEST_LOGGER_NAME, APPEND, "DEBUG")],
            ErrorCode.INVALID_REQUEST,
            "APPEND operation is not allowed for the BROKER_LOGGER resource",
        ),
        (
            "x",
            [(REQUEST_LOGGER_NAME, SET, "DEBUG")],
            ErrorCode.INVALID_REQUEST,
            "Node id must be an integer, but it is: x",
        ),
        (
            "0",
            [(REQUEST_LOGGER_NAME, SET, None)],
            ErrorCode.INVALID_REQUEST,
            f"Null value not supported for : {REQUEST_LOGGER_NAME}",
        ),
    ],
)
def test_logger_errors_are_kafkas(call: Caller, name: str, ops: list, code: int, message: str) -> None:
    out = alter_logger(call, name, *ops)
    assert (out.error_code, out.error_message) == (code, message)
    assert not logging.getLogger(REQUEST_LOGGER_NAME).isEnabledFor(logging.DEBUG)


def test_level_names() -> None:
    assert [level_name(x) for x in (5, 10, 20, 30, 40, 50, 60)] == [
        "TRACE",
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
        "FATAL",
        "OFF",
    ]


def test_api_key_names() -> None:
    assert [_api_key_name(n) for n in ("Produce", "ApiVersions", "LeaderAndIsr", "OffsetForLeaderEpoch")] == [
        "PRODUCE",
        "API_VERSIONS",
        "LEADER_AND_ISR",
        "OFFSET_FOR_LEADER_EPOCH",
    ]


def test_line_layout_and_records_as_sizes() -> None:
    produce = ProduceRequest(
        acks=-1,
        timeout_ms=100,
        topic_data=[TopicProduceData("t", [PartitionProduceData(0, memoryview(b"x" * 70))])],
    )
    entry = RequestLogEntry(
        0, "Produce", 9, 7, "me", produce, "127.0.0.1:9092-127.0.0.1:5000-0", "PLAINTEXT", ("kp", "1")
    )
    entry.handler_returned()
    entry.completed(None)
    text = entry.line()
    assert text.startswith("Completed request:{")
    desc = json.loads(text[len("Completed request:") :])
    assert list(desc) == [
        "isForwarded", "requestHeader", "request", "response", "connection", "totalTimeMs",
        "requestQueueTimeMs", "localTimeMs", "remoteTimeMs", "throttleTimeMs", "responseQueueTimeMs",
        "sendTimeMs", "securityProtocol", "principal", "listener", "clientInformation",
    ]  # fmt: skip
    assert desc["requestHeader"] == {
        "requestApiKey": 0,
        "requestApiVersion": 9,
        "correlationId": 7,
        "clientId": "me",
        "requestApiKeyName": "PRODUCE",
    }
    assert desc["request"]["topicData"][0]["partitionData"][0] == {"index": 0, "recordsSizeInBytes": 70}
    assert desc["request"]["acks"] == -1 and desc["response"] == ""
    assert desc["clientInformation"] == {"softwareName": "kp", "softwareVersion": "1"}
    assert (desc["principal"], desc["securityProtocol"]) == ("User:ANONYMOUS", "PLAINTEXT")
    assert to_json(None) is None


def test_request_log_switched_on_at_run_time(caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    """A stock admin client (kafka-python) switches kafka.request.logger to DEBUG through
    BROKER_LOGGER; the next request is logged, none before."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    caplog.set_level(logging.DEBUG, logger="kafka.server.ConfigAdminManager")
    with EmbeddedBroker({"log.dirs": str(tmp_path / "data")}) as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=10_000)
        try:
            admin.list_topics()
            assert not [r for r in caplog.records if r.name == REQUEST_LOGGER_NAME]
            resource = ConfigResource(
                ConfigResourceType.BROKER_LOGGER, "0", configs={REQUEST_LOGGER_NAME: "DEBUG"}
            )
            result = admin.alter_configs([resource], incremental=True, raise_on_unknown=False)
            assert logging.getLogger(REQUEST_LOGGER_NAME).isEnabledFor(logging.DEBUG), result
            admin.list_topics()
        finally:
            admin.close()
    lines = [r.getMessage() for r in caplog.records if r.name == REQUEST_LOGGER_NAME]
    metadata = [
        json.loads(m[len("Completed request:") :]) for m in lines if '"requestApiKeyName":"METADATA"' in m
    ]
    assert metadata, lines
    desc = metadata[0]
    assert desc["requestHeader"]["requestApiKey"] == 3 and desc["listener"] == "PLAINTEXT"
    assert desc["response"]["brokers"][0]["nodeId"] == 0
    assert desc["connection"].endswith("-0") and desc["clientInformation"]["softwareName"] != ""
    assert desc["totalTimeMs"] >= desc["localTimeMs"] >= 0


def test_server_log_line_is_kafkas_layout() -> None:
    from broker.__main__ import KafkaFormatter

    record = logging.LogRecord(
        "kafka.server.KafkaServer", logging.WARNING, __file__, 1, "started %s", ("x",), None
    )
    record.created = 1_796_292_900.123  # 2026-12-03 10:15:00.123 UTC
    record.msecs = 123.0
    line = KafkaFormatter().format(record)
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,123\] WARN started x \(kafka\.server\.KafkaServer\)", line
    ), line
