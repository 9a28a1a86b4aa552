"""The container image: built from the repository's Dockerfile through the Docker API (the Python
``docker`` SDK, against whatever engine ``DOCKER_HOST`` names: Docker, or podman's compatible
socket as CI prepares it with ``scripts/container-engine.sh up``), then run as users run it.

* end to end: a published loopback port and a named volume; configuration from ``KAFKA_*``
  variables (seen in DescribeConfigs and in the topic confluent-kafka's producer auto-creates);
  produce and consume with confluent-kafka; the image's HEALTHCHECK; ``docker stop`` exits 0 within
  10 s leaving the clean-shutdown marker in the volume; a new container on the same volume reads
  the same records back;
* the environment of Apache Kafka's own single-node compose example (KRaft, two listeners) with only
  the image name (and the host port) changed;
* a SASL_SSL listener from ``KAFKA_*`` variables and PEM files mounted in ``/etc/kafka/secrets``
  (apache/kafka's image conventions), used by confluent-kafka, a wrong password refused;
* a bad configuration ends the container at once with a message.

Skipped only where no engine answers and ``CI`` is not set; in CI an unreachable engine fails.
Figures (build time, image size, start-to-ready, stop times) are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.healthcheck import check
from broker.testing_ports import free_port

REPO = Path(__file__).resolve().parents[1]
IMAGE_TAG = "brook:compat-test"
DATA_DIR = "/var/lib/brook/data"
MARKER = f"{DATA_DIR}/.kafka_cleanshutdown"
LABEL = {"brook.test": "compat_tests/test_docker.py"}
START_TIMEOUT = 60.0
MESSAGES = 100
TOPIC = "docker-image-test"

pytestmark = pytest.mark.timeout(480)


def _no_engine(reason: str) -> None:
    message = (
        f"no container engine: {reason}. Set DOCKER_HOST to a Docker-compatible engine "
        "(scripts/container-engine.sh up prepares podman's socket)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so this test must run", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    try:
        import docker
    except ImportError:
        docker = None
    if docker is None or not hasattr(docker, "from_env"):  # not the repository's docker/ folder
        _no_engine("the docker SDK is not installed")
    try:
        engine = docker.from_env(timeout=300)
        engine.ping()
    except Exception as exc:  # any failure to reach an engine: DockerException, requests errors...
        _no_engine(f"{type(exc).__name__}: {exc}")
    yield engine
    engine.close()


def _is_podman(client: Any) -> bool:
    return any("podman" in c.get("Name", "").lower() for c in client.version().get("Components", []))


def _figure(name: str, value: str) -> None:
    print(f"[docker image] {name}: {value}")


@pytest.fixture(scope="module")
def image(client: Any) -> Any:
    import docker

    started = time.monotonic()
    try:
        built, _ = client.images.build(path=str(REPO), tag=IMAGE_TAG, rm=True, forcerm=True, pull=False)
    except docker.errors.BuildError as exc:
        lines = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
        hint = ""
        if not any((REPO / "docker" / "wheels").glob("*.whl")):
            hint = "\n(docker/wheels/ is empty: offline, the build needs scripts/container-engine.sh wheels)"
        pytest.fail(f"image build failed: {exc}\n{lines[-4000:]}{hint}", pytrace=False)
    _figure("build time (cached layers reused)", f"{time.monotonic() - started:.1f} s")
    _figure("image size", f"{built.attrs['Size'] / 1e6:.0f} MB")
    return built


def _wait(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Run:
    """One container of the image, reachable on a loopback port of the host."""

    def __init__(
        self,
        client: Any,
        image: Any,
        env: dict[str, str],
        volume: str | None,
        *,
        container_port: int | None = 9092,
        args: list[str] | None = None,
        extra_ports: tuple[int, ...] = (),
        mounts: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.image = image
        self.env = env
        self.volume = volume
        self.container_port = container_port
        self.args = args or []
        #: More container ports, each published on a free loopback port (``{port:N}`` in ``env``).
        self.extra_ports = extra_ports
        #: Host directories mounted read-only: host path -> container path.
        self.mounts = mounts or {}
        self.port = 0
        self.ports: dict[int, int] = {}
        self.container: Any = None
        self.ready_after = 0.0

    def start(self, wait: bool = True) -> Run:
        import docker

        for attempt in range(3):  # a port taken between choosing and binding it: choose again
            self.port = free_port()
            self.ports = {inner: free_port() for inner in self.extra_ports}
            env = {k: v.replace("{port}", str(self.port)) for k, v in self.env.items()}
            for inner_port, outer in self.ports.items():
                env = {k: v.replace(f"{{port:{inner_port}}}", str(outer)) for k, v in env.items()}
            inner = self.container_port or self.port
            published = {f"{inner}/tcp": ("127.0.0.1", self.port)}
            published.update({f"{i}/tcp": ("127.0.0.1", o) for i, o in self.ports.items()})
            volumes = {self.volume: {"bind": DATA_DIR, "mode": "rw"}} if self.volume else {}
            volumes.update({host: {"bind": path, "mode": "ro"} for host, path in self.mounts.items()})
            started = time.monotonic()
            try:
                self.container = self.client.containers.run(
                    self.image.id,
                    self.args,
                    detach=True,
                    environment=env,
                    ports=published,
                    volumes=volumes or None,
                    labels=LABEL,
                )
            except docker.errors.APIError as exc:
                if attempt < 2 and "address already in use" in str(exc).lower():
                    self._remove_failed()
                    continue
                raise
            break
        if wait:
            _wait(
                self._ready, START_TIMEOUT, f"the broker in {self.container.short_id} to answer ApiVersions"
            )
            self.ready_after = time.monotonic() - started
        return self

    def _remove_failed(self) -> None:
        for c in self.client.containers.list(all=True, filters={"label": "brook.test", "status": "created"}):
            with contextlib.suppress(Exception):
                c.remove(force=True)

    def _ready(self) -> bool:
        self.container.reload()
        if self.container.status in ("exited", "dead"):
            raise AssertionError(f"container exited during start:\n{self.logs()}")
        return check("127.0.0.1", self.port, timeout=1.0)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def logs(self) -> str:
        try:
            return str(self.container.logs(stdout=True, stderr=True).decode(errors="replace"))[-6000:]
        except Exception as exc:
            return f"(no logs: {exc})"

    def stop(self) -> tuple[float, int]:
        """``docker stop -t 10``: (seconds taken, exit code)."""
        started = time.monotonic()
        self.container.stop(timeout=10)
        status = self.container.wait(timeout=30)
        return time.monotonic() - started, int(status["StatusCode"])

    def remove(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.remove(force=True, v=True)  # anonymous volumes too


@pytest.fixture
def runs(client: Any) -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.remove()


@pytest.fixture
def volume(client: Any) -> Iterator[str]:
    created = client.volumes.create(name=f"brook-test-{uuid.uuid4().hex[:12]}", labels=LABEL)
    yield created.name
    with contextlib.suppress(Exception):
        created.remove(force=True)


def _produce(bootstrap: str, topic: str, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    failures: list[Any] = []
    for i in range(count):
        producer.produce(
            topic,
            key=f"key-{i}".encode(),
            value=f"value-{i}".encode(),
            on_delivery=lambda err, _msg: failures.append(err) if err is not None else None,
        )
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert not failures, failures[:3]


def _consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[tuple[int, int, bytes, bytes]]:
    """Every record of ``topic`` from the beginning (assigned partitions, no group coordination)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"docker-test-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })  # fmt: skip
    records: list[tuple[int, int, bytes, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + 30
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            records.append((message.partition(), message.offset(), message.key(), message.value()))
    finally:
        consumer.close()
    return sorted(records)


def _broker_configs(bootstrap: str, node_id: int) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, str(node_id))])
    return dict(next(iter(future.values())).result(timeout=30))


def _read_file(container: Any, path: str) -> bytes | None:
    """A file of a (possibly stopped) container, through the archive API; None if absent."""
    import docker

    try:
        stream, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        return member.read()


def _check_health(client: Any, run: Run) -> None:
    """The image declares a HEALTHCHECK; its command passes inside the container, and the engine
    reports the container healthy (podman without systemd runs checks only on request)."""
    run.container.reload()
    health = run.container.attrs["Config"].get("Healthcheck") or run.image.attrs["Config"].get("Healthcheck")
    assert health and health["Test"][0] == "CMD", f"no exec-form HEALTHCHECK in the image: {health}"
    result = run.container.exec_run(health["Test"][1:])
    assert result.exit_code == 0, f"health check command failed: {result.output!r}"
    if _is_podman(client):
        client.api.get(f"{client.api.base_url}/v4.0.0/libpod/containers/{run.container.id}/healthcheck")

    def healthy() -> bool:
        run.container.reload()
        return (run.container.attrs["State"].get("Health") or {}).get("Status") == "healthy"

    started = time.monotonic()
    _wait(healthy, 60, "the engine to report the container healthy", interval=0.5)
    _figure(
        "engine reports healthy after", f"{time.monotonic() - started + run.ready_after:.1f} s from start"
    )


def test_image_metadata(image: Any) -> None:
    config = image.attrs["Config"]
    assert config["User"] not in ("", "root", "0", "0:0"), config["User"]
    assert DATA_DIR in (config.get("Volumes") or {})
    assert "9092/tcp" in (config.get("ExposedPorts") or {})
    assert config["Entrypoint"][:1] == ["/opt/brook/bin/python"], "exec form: Python is PID 1"


def test_end_to_end_with_volume_and_restart(client: Any, image: Any, volume: str, runs: list[Run]) -> None:
    env = {
        # Only advertised.listeners: the image derives listeners=PLAINTEXT://0.0.0.0:{port} from it.
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_LOG_RETENTION_HOURS": "72",
        "KAFKA_NUM_PARTITIONS": "3",
    }
    first = Run(client, image, env, volume, container_port=None)
    runs.append(first)
    first.start()
    _figure("first start to ready (ApiVersions answered)", f"{first.ready_after:.2f} s")
    _check_health(client, first)

    _produce(first.bootstrap, TOPIC, MESSAGES)
    written = _consume(first.bootstrap, TOPIC, 3, MESSAGES)
    assert len(written) == MESSAGES
    assert {p for p, *_ in written} == {0, 1, 2}, "num.partitions=3 from KAFKA_NUM_PARTITIONS"
    assert sorted(v for *_, v in written) == sorted(f"value-{i}".encode() for i in range(MESSAGES))

    from confluent_kafka import Producer

    metadata = Producer({"bootstrap.servers": first.bootstrap}).list_topics(TOPIC, timeout=30)
    ((node_id, endpoint),) = metadata.brokers.items()
    assert (endpoint.host, endpoint.port) == ("127.0.0.1", first.port), "advertised.listeners from the env"
    configs = _broker_configs(first.bootstrap, node_id)
    retention = configs["log.retention.hours"]
    assert retention.value == "72", retention
    assert retention.source == 4, "STATIC_BROKER_CONFIG"
    assert configs["num.partitions"].value == "3"
    assert configs["log.dirs"].value == DATA_DIR

    stop_seconds, exit_code = first.stop()
    _figure("first stop (SIGTERM to exit)", f"{stop_seconds:.2f} s")
    assert exit_code == 0, f"exit code {exit_code} (137 = killed after the 10 s grace):\n{first.logs()}"
    assert stop_seconds < 10
    marker = _read_file(first.container, MARKER)
    assert marker is not None, f"no clean-shutdown marker in the volume:\n{first.logs()}"
    assert json.loads(marker)["version"] == 0

    # A new container on the same volume, this time listening on the image's default port 9092.
    second = Run(client, image, {
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092",
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:{port}",
    }, volume)  # fmt: skip
    runs.append(second)
    second.start()
    _figure("second start on the same volume to ready", f"{second.ready_after:.2f} s")
    assert _consume(second.bootstrap, TOPIC, 3, MESSAGES) == written
    assert _read_file(second.container, MARKER) is None, "the marker is removed while the broker runs"
    stop_seconds, exit_code = second.stop()
    _figure("second stop", f"{stop_seconds:.2f} s")
    assert exit_code == 0 and stop_seconds < 10, second.logs()


def test_kafka_official_image_compose_environment(client: Any, image: Any, runs: list[Run]) -> None:
    """The environment of apache/kafka's docker/examples single-node plaintext compose file
    (Kafka 3.9), image name changed; only the host port differs (any free one, not 9092)."""
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"
        ),
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT_HOST://127.0.0.1:{port},PLAINTEXT://broker:19092",
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
    run = Run(client, image, env, None)
    runs.append(run)
    run.start()
    _produce(run.bootstrap, "compose-example", 5)
    records = _consume(run.bootstrap, "compose-example", 1, 5)
    assert [v for *_, v in records] == [f"value-{i}".encode() for i in range(5)]
    assert "single-node KRaft settings" in run.logs()
    seconds, exit_code = run.stop()
    assert exit_code == 0 and seconds < 10, run.logs()


def test_tls_and_sasl_from_kafka_variables_and_mounted_pem_files(
    client: Any, image: Any, runs: list[Run], tmp_path: Path
) -> None:
    """A SASL_SSL listener configured as apache/kafka's image is: the PEM key store named by
    ``KAFKA_SSL_KEYSTORE_FILENAME`` in a mounted ``/etc/kafka/secrets``, its key password in the
    ``KAFKA_SSL_KEY_CREDENTIALS`` file, PLAIN users in a per-listener JAAS variable; confluent-kafka
    produces and consumes over it, and a wrong password is refused."""
    from compat_tests.clients.roundtrips import confluent_roundtrip
    from tests.security.certs import KEY_PASSWORD, make_pki

    pki = make_pki(tmp_path / "pki")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "server-keystore.pem").write_bytes(pki.server.keystore.read_bytes())
    (secrets / "key_creds").write_text(KEY_PASSWORD + "\n")
    for path in (secrets, *secrets.iterdir()):  # the image runs as uid 1000
        path.chmod(0o755 if path.is_dir() else 0o644)
    env = {
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,SASL_SSL://:9093",
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{port:9093}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN",
        "KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'user_alice="alice-secret";'
        ),
        "KAFKA_SSL_KEYSTORE_TYPE": "PEM",
        "KAFKA_SSL_KEYSTORE_FILENAME": "server-keystore.pem",
        "KAFKA_SSL_KEY_CREDENTIALS": "key_creds",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    }
    run = Run(client, image, env, None, extra_ports=(9093,), mounts={str(secrets): "/etc/kafka/secrets"})
    runs.append(run)
    run.start()
    settings: dict[str, object] = {
        "bootstrap.servers": f"127.0.0.1:{run.ports[9093]}",
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(pki.ca),
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "alice",
        "sasl.password": "alice-secret",
    }
    values = [f"secured-{i}".encode() for i in range(20)]
    assert sorted(confluent_roundtrip(settings, "docker-sasl-ssl", values, 30.0)) == sorted(values)

    from confluent_kafka import Producer

    errors: list[Any] = []
    refused = Producer({**settings, "sasl.password": "wrong", "error_cb": errors.append})
    refused.produce("docker-sasl-ssl", b"refused")
    refused.flush(5)  # serves the error callback
    assert any("Authentication failed" in str(e) for e in errors), errors
    logs = run.logs()
    assert "alice-secret" not in logs and KEY_PASSWORD not in logs


def test_invalid_configuration_ends_the_container(client: Any, image: Any, runs: list[Run]) -> None:
    run = Run(client, image, {"KAFKA_NUM_PARTITIONS": "zero"}, None)
    runs.append(run)
    run.start(wait=False)
    status = run.container.wait(timeout=30)
    assert status["StatusCode"] == 2
    assert "invalid configuration" in run.logs() and "num.partitions" in run.logs()
