"""docker/entrypoint.py, the container's PID 1: layering of container defaults, the mounted file,
KAFKA_* variables and arguments; Kafka image conventions; the single-node KRaft translation."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from broker.config import BrokerConfig, ConfigError

REPO = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is being made
    spec.loader.exec_module(module)
    return module


entrypoint = _load("brook_docker_entrypoint", REPO / "docker" / "entrypoint.py")
requirements = _load("brook_docker_requirements", REPO / "docker" / "requirements.py")

#: apache/kafka 3.9 docker/examples/docker-compose-files/single-node/plaintext/docker-compose.yml
KAFKA_COMPOSE_ENV = {
    "KAFKA_NODE_ID": "1",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"
    ),
    "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@broker:29093",
    "KAFKA_LISTENERS": "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
    "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "CLUSTER_ID": "4L6g3nShT-eMCtK--X86sw",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_LOG_DIRS": "/tmp/kraft-combined-logs",
}


def config_of(
    env: dict[str, str], properties: dict[str, str] | None = None, argv: list[str] | None = None
) -> BrokerConfig:
    static, _ = entrypoint.container_static(env, properties, entrypoint.parse_arguments(argv or []))
    return BrokerConfig(static, embedded_defaults=False)


def endpoints(listeners: tuple[object, ...]) -> list[str]:
    return [listener.connection_string for listener in listeners]  # type: ignore[attr-defined]


# -- defaults ------------------------------------------------------------------------------------


def test_container_defaults_listen_everywhere_advertise_localhost_and_use_the_volume() -> None:
    config = config_of({"PATH": "/usr/bin", "HOSTNAME": "abc"})
    assert endpoints(config.listeners) == ["PLAINTEXT://0.0.0.0:9092"]
    assert endpoints(config.advertised_listeners) == ["PLAINTEXT://localhost:9092"]
    assert [str(d) for d in config.log_dirs] == ["/var/lib/brook/data"]


def test_defaults_do_not_override_what_is_set() -> None:
    config = config_of({"KAFKA_LOG_DIR": "/data/one"}, {"listeners": "PLAINTEXT://127.0.0.1:9093"})
    assert endpoints(config.listeners) == ["PLAINTEXT://127.0.0.1:9093"]
    assert [str(d) for d in config.log_dirs] == ["/data/one"], (
        "log.dir alone is not hidden by a default log.dirs"
    )


# -- listeners from advertised.listeners, as Kafka's image --------------------------------------


def test_listeners_derived_from_advertised_listeners_keep_names_and_ports() -> None:
    assert (
        entrypoint.derive_listeners("PLAINTEXT://broker:29092,PLAINTEXT_HOST://localhost:9092")
        == "PLAINTEXT://0.0.0.0:29092,PLAINTEXT_HOST://0.0.0.0:9092"
    )
    config = config_of({
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://broker:29092,PLAINTEXT_HOST://localhost:9092",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
    })  # fmt: skip
    assert endpoints(config.listeners) == ["PLAINTEXT://0.0.0.0:29092", "PLAINTEXT_HOST://0.0.0.0:9092"]
    assert endpoints(config.advertised_listeners) == [
        "PLAINTEXT://broker:29092",
        "PLAINTEXT_HOST://localhost:9092",
    ]


def test_listeners_of_a_mounted_file_are_not_replaced_by_derived_ones() -> None:
    config = config_of(
        {"KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka.example:9092"}, {"listeners": "PLAINTEXT://:9092"}
    )
    assert endpoints(config.listeners) == ["PLAINTEXT://:9092"]


# -- precedence: defaults < file < KAFKA_* (variables, then KAFKA_ arguments) < --override -------


def test_precedence_file_env_arguments_override() -> None:
    file = {
        "num.partitions": "1",
        "log.retention.hours": "1",
        "default.replication.factor": "1",
        "log.roll.hours": "1",
    }
    env = {
        "KAFKA_NUM_PARTITIONS": "2",
        "KAFKA_LOG_RETENTION_HOURS": "2",
        "KAFKA_DEFAULT_REPLICATION_FACTOR": "2",
    }
    argv = ["KAFKA_NUM_PARTITIONS=3", "KAFKA_LOG_RETENTION_HOURS=3", "--override", "num.partitions=4"]
    config = config_of(env, file, argv)
    assert config.get("log.roll.hours") == 1  # file only
    assert config.get("default.replication.factor") == 2  # env over file
    assert config.get("log.retention.hours") == 3  # KAFKA_ argument over env
    assert config.get("num.partitions") == 4  # --override over everything


def test_kafka_image_name_mangling() -> None:
    static, _ = entrypoint.container_static(
        {"KAFKA_VALID___PROPERTY__ALL_CASES": "x", "KAFKA_HEAP_OPTS": "-Xmx1G"}
    )
    assert static["valid-property_all.cases"] == "x"
    assert "heap.opts" not in static


# -- arguments -----------------------------------------------------------------------------------


def test_arguments() -> None:
    args = entrypoint.parse_arguments(
        ["/etc/brook/server.properties", "--override", "a.b=1", "--override=c.d=x=y", "KAFKA_E_F=2"]
    )
    assert args.properties == Path("/etc/brook/server.properties")
    assert args.overrides == {"a.b": "1", "c.d": "x=y"}
    assert args.variables == {"KAFKA_E_F": "2"}


@pytest.mark.parametrize(
    "argv", [["--verbose"], ["a.properties", "b.properties"], ["--override"], ["--override", "x"]]
)
def test_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(entrypoint.UsageError):
        entrypoint.parse_arguments(argv)


def test_properties_file_argument_is_read(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=7\nlog.dirs=/data/x\n")
    config, _ = entrypoint.load({"KAFKA_LOG_RETENTION_HOURS": "5"}, entrypoint.parse_arguments([str(path)]))
    assert config.get("num.partitions") == 7
    assert config.get("log.retention.hours") == 5
    assert [str(d) for d in config.log_dirs] == ["/data/x"]


def test_mounted_file_is_read_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mounted = tmp_path / "server.properties"
    monkeypatch.setattr(entrypoint, "MOUNTED_PROPERTIES", mounted)
    config, _ = entrypoint.load({}, entrypoint.Arguments())
    assert config.get("num.partitions") == 1
    mounted.write_text("num.partitions=9\n")
    config, _ = entrypoint.load({"KAFKA_NUM_PARTITIONS": "10"}, entrypoint.Arguments())
    assert config.get("num.partitions") == 10
    config, _ = entrypoint.load({}, entrypoint.Arguments())
    assert config.get("num.partitions") == 9


# -- apache/kafka compose files (KRaft) ---------------------------------------------------------


def test_kafka_single_node_compose_environment_runs_standalone() -> None:
    static, notes = entrypoint.container_static(KAFKA_COMPOSE_ENV)
    config = BrokerConfig(static, embedded_defaults=False)
    assert config.node_id == 1
    assert endpoints(config.listeners) == ["PLAINTEXT_HOST://:9092", "PLAINTEXT://:19092"]
    assert endpoints(config.advertised_listeners) == [
        "PLAINTEXT_HOST://localhost:9092",
        "PLAINTEXT://broker:19092",
    ]
    assert [str(d) for d in config.log_dirs] == ["/tmp/kraft-combined-logs"]
    for key in entrypoint.KRAFT_KEYS:
        assert key not in static
    assert len(notes) == 1 and "CONTROLLER://:29093" in notes[0]


def test_without_the_translation_kraft_settings_are_refused() -> None:
    from broker.config import config_from_environment

    with pytest.raises(ConfigError):
        BrokerConfig(config_from_environment(KAFKA_COMPOSE_ENV))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"KAFKA_CONTROLLER_QUORUM_VOTERS": "1@k1:9093,2@k2:9093,3@k3:9093"}, "quorum of 3 controllers"),
        ({"KAFKA_PROCESS_ROLES": "controller"}, "controller-only"),
        ({"KAFKA_PROCESS_ROLES": "broker"}, "separate KRaft controller quorum"),
        ({"KAFKA_CONTROLLER_QUORUM_VOTERS": "2@other:9093"}, "not this node"),
    ],
)
def test_kraft_clusters_are_refused_with_a_reason(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        entrypoint.container_static({**KAFKA_COMPOSE_ENV, **changes})


# -- health check --------------------------------------------------------------------------------


def test_healthcheck_target() -> None:
    assert entrypoint.healthcheck_target(config_of({})) == ("127.0.0.1", 9092)
    assert entrypoint.healthcheck_target(config_of({"KAFKA_LISTENERS": "PLAINTEXT://10.1.2.3:9093"})) == (
        "10.1.2.3",
        9093,
    )
    assert entrypoint.healthcheck_target(config_of(KAFKA_COMPOSE_ENV)) == ("127.0.0.1", 9092)


def test_healthcheck_fails_when_nothing_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        target = tmp_path / "target"
        target.write_text(f"127.0.0.1:{port}\n")
        monkeypatch.setattr(entrypoint, "TARGET_FILE", target)
        assert entrypoint.main(["healthcheck"], {}) == 1


# -- the script as the image runs it ------------------------------------------------------------


def _run_script(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "docker" / "entrypoint.py"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_invalid_configuration_exits_2_with_the_reason() -> None:
    result = _run_script("KAFKA_NUM_PARTITIONS=zero")
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "num.partitions" in result.stderr


def test_usage_error_exits_2() -> None:
    result = _run_script("--bogus")
    assert result.returncode == 2
    assert "unknown option" in result.stderr


def test_image_requirements_are_pyproject_dependencies_and_uvloop() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = requirements.requirements(REPO / "pyproject.toml")
    assert listed == [*project["dependencies"], *project["optional-dependencies"]["fast"]]
    assert all("==" in requirement for requirement in listed), "the image installs pinned versions only"
