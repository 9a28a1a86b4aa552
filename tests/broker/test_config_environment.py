"""KAFKA_* environment variables, as Apache Kafka's Docker image maps them."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import config_from_environment, load_config


def test_simple_names() -> None:
    env = {
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://broker:9092",
        "KAFKA_LOG_RETENTION_HOURS": "24",
        "KAFKA_NUM_PARTITIONS": "3",
    }
    assert config_from_environment(env) == {
        "advertised.listeners": "PLAINTEXT://broker:9092",
        "log.retention.hours": "24",
        "num.partitions": "3",
    }


def test_triple_and_double_underscores() -> None:
    # The case from Kafka's own KafkaDockerWrapperTest.
    env = {"KAFKA_VALID___PROPERTY__ALL_CASES": "All Cases Value", "KAFKA_ZOOKEEPER_CLIENTCNXNSOCKET": "x"}
    assert config_from_environment(env) == {
        "valid-property_all.cases": "All Cases Value",
        "zookeeper.clientcnxnsocket": "x",
    }


def test_only_the_leading_prefix_is_removed() -> None:
    assert config_from_environment({"KAFKA_KAFKA_METRICS_REPORTERS": "x"}) == {"kafka.metrics.reporters": "x"}


def test_launcher_and_logging_variables_are_excluded() -> None:
    env = {
        "KAFKA_HEAP_OPTS": "-Xmx1G",
        "KAFKA_OPTS": "-Dx=y",
        "KAFKA_JMX_OPTS": "-Dcom.sun.management.jmxremote",
        "KAFKA_JMX_PORT": "9999",
        "KAFKA_JMX_HOSTNAME": "h",
        "KAFKA_LOG4J_OPTS": "x",
        "KAFKA_LOG4J_LOGGERS": "kafka=INFO",
        "KAFKA_LOG4J_ROOT_LOGLEVEL": "INFO",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL": "WARN",
        "KAFKA_JVM_PERFORMANCE_OPTS": "-server",
        "KAFKA_GC_LOG_OPTS": "x",
        "KAFKA_VERSION": "3.9.0",
        "KAFKA_DEBUG": "y",
        "KAFKA_": "nothing",
        "CLUSTER_ID": "abc",
        "PATH": "/usr/bin",
        "KAFKA_LOG_DIRS": "/var/lib/kafka",
    }
    assert config_from_environment(env) == {"log.dirs": "/var/lib/kafka"}


def test_values_are_verbatim() -> None:
    value = 'org.example.Login required user="a\\b";'
    assert config_from_environment({"KAFKA_SASL_JAAS_CONFIG": value}) == {"sasl.jaas.config": value}


def test_environment_sits_between_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text(
        f"log.dirs={tmp_path}\nnum.partitions=2\nlog.retention.hours=10\ndefault.replication.factor=1\n"
    )
    env = {"KAFKA_NUM_PARTITIONS": "4", "KAFKA_LOG_RETENTION_HOURS": "20"}
    config = load_config(path, ["log.retention.hours=30"], environment=env)
    assert config.num_partitions == 4
    assert config.get("log.retention.hours") == 30
    assert config.default_replication_factor == 1


def test_environment_is_not_read_implicitly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_NUM_PARTITIONS", "7")
    assert load_config(None, [f"log.dir={tmp_path}"]).num_partitions == 1


def test_sasl_settings_as_the_confluent_and_apache_images_spell_them() -> None:
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret" user_alice="alice-secret";'
    )
    env = {
        "KAFKA_LISTENERS": "SASL_PLAINTEXT://:9092",
        "KAFKA_SASL_ENABLED__MECHANISMS": "wrong: __ is an underscore",
        "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN,SCRAM-SHA-512",
        "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG": jaas,
        "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_SCRAM___SHA___512_SASL_JAAS_CONFIG": "x",
        "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL": "PLAIN",
    }
    got = config_from_environment(env)
    assert got["listener.name.sasl_plaintext.plain.sasl.jaas.config"] == jaas
    assert got["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] == "x"
    assert got["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-512"
    assert got["sasl.mechanism.inter.broker.protocol"] == "PLAIN"
