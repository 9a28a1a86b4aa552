"""The Prometheus endpoint (``brook.metrics.listener``): exact numbers after a known workload,
scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.admin_client import METADATA_VERSION, KafkaAdmin
from broker.config import ConfigError
from broker.embedding import EmbeddedBroker
from broker.metrics.address import parse_metrics_listener
from broker.metrics.stats import REQUEST_TIME_BUCKETS_MS, RequestTimes
from tests.broker.metrics_kit import Scrape, scrape, scrape_text, value

TIMEOUT = 20.0
REPO = Path(__file__).resolve().parents[2]

# -- pure parts --------------------------------------------------------------------------------


@given(st.integers(0, 65535), st.sampled_from(["127.0.0.1", "0.0.0.0", "localhost", "[::1]"]))
def test_a_listener_url_gives_its_host_and_port(port: int, host: str) -> None:
    assert parse_metrics_listener(f"http://{host}:{port}") == (host.strip("[]"), port)


@pytest.mark.parametrize(
    "bad", ["127.0.0.1:9404", "https://h:1", "http://h", "http://h:99999", "http://h:1/x", "http://h:x"]
)
def test_a_bad_listener_is_refused_with_its_reason(bad: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)metrics listener|port|path|host:port"):
        parse_metrics_listener(bad)
    with pytest.raises(ConfigError):
        EmbeddedBroker({"brook.metrics.listener": bad})


def test_the_listener_is_off_by_default() -> None:
    assert parse_metrics_listener("") is None
    assert parse_metrics_listener("  ") is None


@given(st.lists(st.floats(0, 100_000, allow_nan=False), max_size=200))
def test_the_request_time_histogram_is_cumulative_and_counts_each_observation(times: list[float]) -> None:
    histogram = RequestTimes()
    for i, ms in enumerate(times):
        histogram.observe(i % 3, ms)
    buckets = histogram.cumulative()
    assert buckets[-1] == ("+Inf", len(times))
    counts = [n for _, n in buckets]
    assert counts == sorted(counts)
    for (le, n), bound in zip(buckets, REQUEST_TIME_BUCKETS_MS, strict=False):
        assert float(le) == bound
        assert n == sum(1 for ms in times if ms <= bound)
    assert histogram.sum_ms == pytest.approx(sum(times))
    assert histogram.count == len(times)
    assert histogram.by_version[:3] == [len(range(v, len(times), 3)) for v in range(3)]


# -- a real broker -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"brook.metrics.listener": "http://127.0.0.1:0"}) as embedded:
        yield embedded


def metrics_port(embedded: EmbeddedBroker) -> int:
    endpoint = embedded.broker.metrics
    assert endpoint is not None
    return endpoint.port


def log_bytes(embedded: EmbeddedBroker, topic: str, partition: int) -> int:
    directory = embedded.data_dir / f"{topic}-{partition}"
    return sum(f.stat().st_size for f in directory.glob("*.log"))


#: topic -> partition -> (messages, value size)
WORKLOAD = {"metrics-a": {0: (30, 100), 1: (20, 300)}, "metrics-b": {0: (10, 1000)}}
#: (topic, partition) -> offset the group commits
COMMITTED = {("metrics-a", 0): 12, ("metrics-a", 1): 20, ("metrics-b", 0): 3}
GROUP = "metrics-group"


@pytest.fixture(scope="module")
def workload(broker: EmbeddedBroker) -> tuple[Scrape, Scrape]:
    """Produce WORKLOAD, consume all of it once in GROUP, commit COMMITTED; scrapes before and
    after."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    before = scrape(metrics_port(broker))
    with KafkaAdmin(broker.bootstrap_servers, timeout=TIMEOUT) as admin:
        for topic, partitions in WORKLOAD.items():
            admin.create_topic(topic, partitions=len(partitions))
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "acks": "all", "linger.ms": 5})
    for topic, partitions in WORKLOAD.items():
        for index, (count, size) in partitions.items():
            for i in range(count):
                producer.produce(topic, bytes([i % 256]) * size, partition=index)
            assert producer.flush(TIMEOUT) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign([TopicPartition(t, p, 0) for t, partitions in WORKLOAD.items() for p in partitions])
        total = sum(n for partitions in WORKLOAD.values() for n, _ in partitions.values())
        got = 0
        for _ in range(400):
            if got >= total:
                break
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                got += 1
        assert got == total
        consumer.commit(
            offsets=[TopicPartition(t, p, offset) for (t, p), offset in COMMITTED.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()
    return before, scrape(metrics_port(broker))


def test_messages_and_bytes_in_are_exact_per_topic_and_in_total(
    broker: EmbeddedBroker, workload: tuple[Scrape, Scrape]
) -> None:
    _, after = workload
    all_messages = all_bytes = 0
    for topic, partitions in WORKLOAD.items():
        messages = sum(n for n, _ in partitions.values())
        # Kafka counts the record batches as received; unrecompressed, they are what the log holds.
        size = sum(log_bytes(broker, topic, p) for p in partitions)
        assert value(after, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == messages
        assert value(after, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) == size
        for p in partitions:
            assert value(after, "kafka_log_log_size", topic=topic, partition=str(p)) == log_bytes(
                broker, topic, p
            )
        all_messages += messages
        all_bytes += size
    # The group coordinator's appends count too, as in Kafka: one commit of three offsets.
    offsets = "__consumer_offsets"
    assert value(after, "kafka_server_brokertopicmetrics_messagesin_total", topic=offsets) == len(COMMITTED)
    offsets_bytes = log_bytes(broker, offsets, 0)
    assert value(after, "kafka_server_brokertopicmetrics_bytesin_total", topic=offsets) == offsets_bytes
    assert value(after, "kafka_server_brokertopicmetrics_messagesin_total") == all_messages + len(COMMITTED)
    assert value(after, "kafka_server_brokertopicmetrics_bytesin_total") == all_bytes + offsets_bytes


def test_bytes_out_are_the_record_bytes_the_consumer_read(
    broker: EmbeddedBroker, workload: tuple[Scrape, Scrape]
) -> None:
    _, after = workload
    for topic, partitions in WORKLOAD.items():
        size = sum(log_bytes(broker, topic, p) for p in partitions)
        # Everything was read exactly once from offset 0.
        assert value(after, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) == size


def test_lag_is_the_log_end_minus_the_committed_offset(workload: tuple[Scrape, Scrape]) -> None:
    _, after = workload
    for (topic, partition), committed in COMMITTED.items():
        end = WORKLOAD[topic][partition][0]
        labels = {"consumergroup": GROUP, "topic": topic, "partition": str(partition)}
        assert value(after, "kafka_consumergroup_current_offset", **labels) == committed
        assert value(after, "kafka_consumergroup_lag", **labels) == end - committed


def test_request_counts_per_api_are_exact(broker: EmbeddedBroker, workload: tuple[Scrape, Scrape]) -> None:
    _, after = workload
    # The workload made produce, fetch and commit requests.
    for api in ("Produce", "Fetch", "OffsetCommit", "CreateTopics"):
        assert sum(v for (n, labels), v in after.items() if n == "kafka_network_requestmetrics_requests_total"
                   and ("request", api) in labels) >= 1, api  # fmt: skip
    # Kafka counts a fetch under Fetch and under FetchConsumer or FetchFollower.
    requests = "kafka_network_requestmetrics_requests_total"
    fetches = {
        kind: sum(v for (n, labels), v in after.items() if n == requests and ("request", kind) in labels)
        for kind in ("Fetch", "FetchConsumer", "FetchFollower")
    }
    assert fetches["Fetch"] == fetches["FetchConsumer"] >= 1
    assert fetches["FetchFollower"] == 0
    port = metrics_port(broker)
    start = scrape(port)
    key = {"request": "Metadata", "version": str(METADATA_VERSION)}
    with KafkaAdmin(broker.bootstrap_servers, timeout=TIMEOUT) as admin:
        for _ in range(3):
            admin.describe_cluster()
    end = scrape(port)
    name = "kafka_network_requestmetrics_requests_total"
    assert value(end, name, **key) - start.get((name, tuple(sorted(key.items()))), 0) == 3
    count = "kafka_network_requestmetrics_totaltimems_count"
    assert value(end, count, request="Metadata") - start.get((count, (("request", "Metadata"),)), 0) == 3
    assert value(end, "kafka_network_requestmetrics_totaltimems_bucket", request="Metadata", le="+Inf") == (
        value(end, count, request="Metadata")
    )


def test_replica_controller_and_connection_gauges_of_the_single_node(
    broker: EmbeddedBroker, workload: tuple[Scrape, Scrape]
) -> None:
    port = metrics_port(broker)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT):
        after = scrape(port)
        partitions = sum(len(p) for p in WORKLOAD.values()) + 1  # and __consumer_offsets' one
        assert value(after, "kafka_server_replicamanager_partitioncount") == partitions
        assert value(after, "kafka_server_replicamanager_leadercount") == partitions
        assert value(after, "kafka_server_replicamanager_underreplicatedpartitions") == 0
        assert value(after, "kafka_controller_kafkacontroller_activecontrollercount") == 1
        assert value(after, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
        assert value(after, "kafka_server_replicamanager_isrshrinks_total") == 0
        connections = value(
            after,
            "kafka_server_socket_server_metrics_connection_count",
            listener="PLAINTEXT",
            networkProcessor="0",
        )
        assert connections >= 1
        idle = value(after, "kafka_network_socketserver_networkprocessoravgidlepercent")
        assert 0.0 <= idle <= 1.0


def test_only_get_of_metrics_is_served_and_garbage_does_not_hurt(broker: EmbeddedBroker) -> None:
    port = metrics_port(broker)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=TIMEOUT)
    assert missing.value.code == 404
    post = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=TIMEOUT)
    assert refused.value.code == 405
    for garbage in (b"\x00\xff" * 100 + b"\r\n\r\n", b"GET\r\n\r\n", b"A" * 70_000):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(4096)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
    assert "kafka_server_replicamanager_partitioncount" in scrape_text(port)


def test_two_brokers_in_one_process_serve_their_own_numbers(broker: EmbeddedBroker) -> None:
    with EmbeddedBroker({"brook.metrics.listener": "http://127.0.0.1:0"}) as other:
        with KafkaAdmin(other.bootstrap_servers, timeout=TIMEOUT) as admin:
            admin.create_topic("metrics-other")
        theirs = scrape(metrics_port(other))
        ours = scrape(metrics_port(broker))
    assert value(theirs, "kafka_server_replicamanager_partitioncount") == 1
    assert value(theirs, "kafka_log_log_size", topic="metrics-other", partition="0") == 0
    assert ("kafka_log_log_size", (("partition", "0"), ("topic", "metrics-other"))) not in ours


def test_a_broker_without_the_listener_serves_nothing_and_never_imports_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from broker.embedding import EmbeddedBroker\n"
        "with EmbeddedBroker() as b:\n"
        "    assert b.broker.metrics is None\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "False"


# -- the Grafana dashboard ---------------------------------------------------------------------

DASHBOARD = REPO / "docker" / "grafana" / "brook-dashboard.json"
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are not functions, keywords,
    label names in ``by (...)``, matchers, ranges or strings."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", stripped)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped):
        rest = stripped[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in _PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
            assert found, query
            exprs.append(found.group(1))
    return exprs


def test_promql_names_are_extracted_without_functions_labels_or_strings() -> None:
    expr = 'histogram_quantile(0.99, sum by (request, le) (rate(a_bucket{x="b_c"}[5m]))) / sum(b) or c'
    assert promql_metric_names(expr) == {"a_bucket", "b", "c"}


def test_the_grafana_dashboard_loads_and_reads_only_metrics_a_broker_serves(
    workload: tuple[Scrape, Scrape],
) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["uid"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = dashboard_queries(dashboard)
    assert len(exprs) >= 15
    served = {name for name, _ in workload[1]}
    used = set().union(*(promql_metric_names(e) for e in exprs))
    assert used, exprs
    assert used <= served, sorted(used - served)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["refId"] and target["datasource"]["type"] == "prometheus"


def test_a_deleted_topic_leaves_the_scrape(broker: EmbeddedBroker) -> None:
    from confluent_kafka import Producer

    port = metrics_port(broker)
    with KafkaAdmin(broker.bootstrap_servers, timeout=TIMEOUT) as admin:
        admin.create_topic("metrics-doomed")
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        producer.produce("metrics-doomed", b"x")
        assert producer.flush(TIMEOUT) == 0
        assert (
            value(scrape(port), "kafka_server_brokertopicmetrics_messagesin_total", topic="metrics-doomed")
            == 1
        )
        admin.delete_topic("metrics-doomed")
    assert not [key for key in scrape(port) if ("topic", "metrics-doomed") in key[1]]
