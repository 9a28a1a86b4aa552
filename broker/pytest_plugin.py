"""Brook's pytest plugin: a real Kafka broker for your tests, in-process, without Docker or a JVM.

Installed with the ``brook`` package it is active (entry point ``pytest11``: ``brook``; name it
``-p brook`` if plugin autoloading is off); from a source tree, ``pytest -p broker.pytest_plugin``
(not both: pytest refuses the same module under two names). It starts nothing until a test uses
one of its fixtures, and imports nothing heavy at collection.

Fixtures:

* ``kafka_broker``: the :class:`~broker.embedding.EmbeddedBroker` of this test. The same broker
  for the whole session (one per pytest-xdist worker: ports are bound as port 0, so workers never
  collide), unless the test is marked ``@pytest.mark.kafka_broker(...)``: then a broker of its
  own, with the marker's overrides, stopped after the test. A fixture of your own with a wider
  scope should depend on ``kafka_session_broker``, the session's broker itself.
* ``kafka_bootstrap``: ``kafka_broker.bootstrap_servers``, for a client's ``bootstrap.servers``.
* ``kafka_admin``: a :class:`~broker.admin_client.KafkaAdmin` on that broker (create, delete,
  list and describe topics) that needs no Kafka client library.
* ``kafka_topic``: a fresh topic name, unique to the test, created before it runs (and deleted
  after it on the shared broker). One partition and the broker's defaults unless set by
  ``@pytest.mark.kafka_topic(partitions=3, config={"cleanup.policy": "compact"})`` or by
  indirect parametrization: ``@pytest.mark.parametrize("kafka_topic", [{"partitions": 3}],
  indirect=True)``.

* ``kafka_cluster``: an :class:`~broker.embedding_cluster.EmbeddedCluster` of this test: three
  ZooKeeper-mode brokers unless marked ``@pytest.mark.kafka_cluster(brokers=5, **overrides)``,
  started for the test and stopped after it (tests of fail-over kill brokers). Its brokers live in
  a ZooKeeper chroot of their own on ``kafka_zookeeper``.
* ``kafka_zookeeper``: the session's ZooKeeper connect string: ``--brook-zookeeper`` /
  ``brook_zookeeper_connect`` when given, else a real ZooKeeper server started from an installed
  distribution (Debian's ``zookeeper`` package or ``$ZOOKEEPER_HOME``) on a free loopback port.
  Without one, the tests that use it are skipped, the reason saying how to install it.

Options: ``--brook-override KEY=VALUE`` (repeatable) and the ini setting ``brook_overrides``
(one ``KEY=VALUE`` a line) set ``server.properties`` keys of every broker the plugin starts.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from broker.admin_client import KafkaAdmin
    from broker.embedding import EmbeddedBroker
    from broker.embedding_cluster import EmbeddedCluster

BROKER_MARKER = "kafka_broker"
TOPIC_MARKER = "kafka_topic"
CLUSTER_MARKER = "kafka_cluster"
DEFAULT_CLUSTER_SIZE = 3
TOPIC_NAME_MAX = 249


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("brook", "Brook embedded Kafka broker")
    group.addoption(
        "--brook-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server.properties key for every embedded broker (repeatable)",
    )
    group.addoption(
        "--brook-zookeeper",
        default=None,
        metavar="HOST:PORT[/CHROOT]",
        help="the ZooKeeper of kafka_cluster's brokers (default: one started from an installed ZooKeeper)",
    )
    parser.addini(
        "brook_overrides", "server.properties KEY=VALUE lines for every embedded broker", "linelist"
    )
    parser.addini("brook_zookeeper_connect", "the ZooKeeper of kafka_cluster's brokers", "string", "")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{BROKER_MARKER}(overrides=None, /, per_test=True, **keys): run this test on a broker of its own, "
        "started with these server.properties overrides (dots written as underscores)",
    )
    config.addinivalue_line(
        "markers",
        f"{TOPIC_MARKER}(partitions=1, config=None, replication_factor=1): how the kafka_topic fixture "
        "creates the test's topic",
    )
    config.addinivalue_line(
        "markers",
        f"{CLUSTER_MARKER}(brokers=3, overrides=None, /, **keys): the size of this test's kafka_cluster "
        "and server.properties overrides of its brokers (dots written as underscores)",
    )


def _default_overrides(config: pytest.Config) -> dict[str, str]:
    entries = [*config.getini("brook_overrides"), *config.getoption("brook_override")]
    result: dict[str, str] = {}
    for entry in entries:
        key, sep, value = str(entry).partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"brook override {entry!r}: expected KEY=VALUE")
        result[key.strip()] = value.strip()
    return result


def _wants_own_broker(request: pytest.FixtureRequest) -> bool:
    """Whether this test runs on a broker of its own: marked ``kafka_broker`` without
    ``per_test=False``."""
    marker = request.node.get_closest_marker(BROKER_MARKER)
    return marker is not None and marker.kwargs.get("per_test", True) is not False


def _start(overrides: Mapping[str, Any], keywords: Mapping[str, Any]) -> EmbeddedBroker:
    from broker.embedding import EmbeddedBroker

    return EmbeddedBroker(overrides, **keywords).start()


@pytest.fixture(scope="session")
def kafka_session_broker(pytestconfig: pytest.Config) -> Iterator[EmbeddedBroker]:
    """The broker shared by every test of the session (of this xdist worker)."""
    broker = _start(_default_overrides(pytestconfig), {})
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """The session's broker, or one of this test's own when it is marked ``kafka_broker``."""
    marker = request.node.get_closest_marker(BROKER_MARKER)
    if not _wants_own_broker(request):
        yield request.getfixturevalue("kafka_session_broker")
        return
    assert marker is not None
    keywords = {k: v for k, v in marker.kwargs.items() if k != "per_test"}
    overrides = dict(_default_overrides(request.config))
    for positional in marker.args:
        if not isinstance(positional, Mapping):
            raise pytest.UsageError(f"{BROKER_MARKER} marker: positional arguments must be dicts")
        overrides.update(positional)
    broker = _start(overrides, keywords)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_bootstrap(kafka_broker: EmbeddedBroker) -> str:
    """``host:port`` of this test's broker."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def kafka_admin(kafka_broker: EmbeddedBroker) -> Iterator[KafkaAdmin]:
    """An admin client on this test's broker (Brook's own codec: no Kafka library needed)."""
    from broker.admin_client import KafkaAdmin

    with KafkaAdmin(kafka_broker.bootstrap_servers) as admin:
        yield admin


@pytest.fixture
def kafka_topic(
    request: pytest.FixtureRequest, kafka_broker: EmbeddedBroker, kafka_admin: KafkaAdmin
) -> Iterator[str]:
    """A topic created for this test only; its name is returned."""
    spec: dict[str, Any] = {}
    marker = request.node.get_closest_marker(TOPIC_MARKER)
    if marker is not None:
        spec.update(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, Mapping):
            raise pytest.UsageError(
                "kafka_topic parameters must be dicts: {'partitions': 3, 'config': {...}}"
            )
        spec.update(param)
    unknown = set(spec) - {"partitions", "config", "replication_factor", "prefix"}
    if unknown:
        raise pytest.UsageError(f"kafka_topic: unknown settings {sorted(unknown)}")
    name = _topic_name(str(spec.get("prefix") or request.node.name))
    kafka_admin.create_topic(
        name,
        partitions=int(spec.get("partitions", 1)),
        replication_factor=int(spec.get("replication_factor", 1)),
        config=spec.get("config") or None,
    )
    yield name
    if kafka_broker.running and not _wants_own_broker(request):
        # On the shared broker: leave nothing behind for later tests. A failure here (the test
        # stopped or killed the broker, say) must not turn a passed test into an error.
        with contextlib.suppress(Exception):
            kafka_admin.delete_topic(name)


@pytest.fixture(scope="session")
def kafka_zookeeper(pytestconfig: pytest.Config) -> Iterator[str]:
    """The ZooKeeper connect string of the session's clusters: the one configured, or a real
    server started here (skipped, with the reason, when none is installed)."""
    given = pytestconfig.getoption("brook_zookeeper") or pytestconfig.getini("brook_zookeeper_connect")
    if given:
        yield str(given)
        return
    from broker.testing_zookeeper import ZooKeeperMissing, ZooKeeperServer, zookeeper_classpath

    try:
        zookeeper_classpath()
    except ZooKeeperMissing as missing:
        pytest.skip(f"kafka_zookeeper: no ZooKeeper to start ({missing}); or pass --brook-zookeeper")
    import shutil
    import tempfile
    from pathlib import Path

    # A directory of its own (not pytest's kept tmp dirs): nothing of ZooKeeper's stays behind.
    base = Path(tempfile.mkdtemp(prefix="brook-zookeeper-"))
    try:
        server = ZooKeeperServer(base).start()
        try:
            yield server.connect_string
        finally:
            server.kill()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def kafka_cluster(request: pytest.FixtureRequest, kafka_zookeeper: str) -> Iterator[EmbeddedCluster]:
    """A cluster of this test's own, in a chroot of the session's ZooKeeper."""
    from broker.embedding_cluster import EmbeddedCluster

    marker = request.node.get_closest_marker(CLUSTER_MARKER)
    overrides = dict(_default_overrides(request.config))
    keywords: dict[str, Any] = {}
    size = DEFAULT_CLUSTER_SIZE
    if marker is not None:
        keywords = dict(marker.kwargs)
        size = int(keywords.pop("brokers", DEFAULT_CLUSTER_SIZE))
        for positional in marker.args:
            if not isinstance(positional, Mapping):
                raise pytest.UsageError(f"{CLUSTER_MARKER} marker: positional arguments must be dicts")
            overrides.update(positional)
    cluster = EmbeddedCluster(size, kafka_zookeeper, overrides, **keywords).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _topic_name(base: str) -> str:
    """A legal, unique Kafka topic name ([a-zA-Z0-9._-], at most 249 characters) from ``base``."""
    suffix = uuid.uuid4().hex[:12]
    cleaned = re.sub(r"[^a-zA-Z0-9._-]+", "-", base).strip("-.") or "topic"
    return f"{cleaned[: TOPIC_NAME_MAX - len(suffix) - 1]}-{suffix}"
