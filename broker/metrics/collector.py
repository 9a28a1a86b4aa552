"""A broker's metrics as Prometheus families, computed at scrape time on the event loop.

Names are those the Prometheus JMX exporter's Kafka rules (``example_configs/kafka-2_0_0.yml``
and the KRaft variants) give Kafka's MBeans, so dashboards built for Kafka read them:
``kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec, topic=t><>Count`` becomes
``kafka_server_brokertopicmetrics_messagesin_total{topic="t"}`` and so on. Consumer-group lag
uses kafka_exporter's names. The hot path only bumps the ints of :mod:`broker.metrics.stats`;
everything else is read here from the broker's state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from broker.metrics.stats import PSEUDO_API_NAMES
from broker.types import TopicPartition
from protocol import api as papi
from protocol.exceptions import UnknownApiError

if TYPE_CHECKING:
    from broker.app import Broker


def _api_name(api_key: int) -> str:
    if api_key in PSEUDO_API_NAMES:
        return PSEUDO_API_NAMES[api_key]
    try:
        return papi.api(api_key).name
    except UnknownApiError:
        return str(api_key)


class LoopIdleMeter:
    """The event loop's idle fraction since the previous reading: 1 - (CPU time of the loop's
    thread / wall time). Brook's one loop does the work of Kafka's network processors, so this is
    its honest NetworkProcessorAvgIdlePercent. Read on the loop's thread only."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = time.thread_time()

    def read(self) -> float:
        wall, cpu = time.monotonic(), time.thread_time()
        elapsed, busy = wall - self._wall, cpu - self._cpu
        self._wall, self._cpu = wall, cpu
        if elapsed <= 0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - busy / elapsed))


class BrokerCollector(Collector):
    """Every family of one broker (registered in that broker's own registry)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.idle = LoopIdleMeter()
        #: High watermarks of partitions led by other brokers (cluster mode), fetched by the
        #: endpoint just before a scrape collects: :meth:`remote_partitions` says which.
        self.remote_end_offsets: dict[TopicPartition, int] = {}

    def remote_partitions(self) -> set[TopicPartition]:
        """Partitions with offsets committed in groups coordinated here that this broker does not
        lead: their log ends must come from their leaders."""
        local = self.broker.replica_manager.partitions
        wanted: set[TopicPartition] = set()
        for group in self.broker.group_coordinator.groups.values():
            for topic, index in group.offsets:
                tp = TopicPartition(topic, index)
                partition = local.get(tp)
                if partition is None or not partition.is_leader:
                    wanted.add(tp)
        return wanted

    def collect(self) -> Iterator[Metric]:
        yield from self._topic_metrics()
        yield from self._request_metrics()
        yield from self._replica_metrics()
        yield from self._controller_metrics()
        yield from self._log_sizes()
        yield from self._network_metrics()
        yield from self._group_lag()
        yield from self._quota_metrics()

    # -- BrokerTopicMetrics ------------------------------------------------------------------------

    def _topic_metrics(self) -> Iterator[Metric]:
        stats = self.broker.stats
        for short, help_text, field in (
            ("messagesin", "Messages appended (Kafka's MessagesInPerSec count).", "messages_in"),
            ("bytesin", "Record bytes received by produce (BytesInPerSec count).", "bytes_in"),
            ("bytesout", "Record bytes sent to consumers (BytesOutPerSec count).", "bytes_out"),
        ):
            name = f"kafka_server_brokertopicmetrics_{short}"
            family = CounterMetricFamily(name, help_text)
            # The all-topics series has no label, as the MBean without topic= gives.
            family.add_sample(name + "_total", {}, getattr(stats.all_topics, field))
            for topic, counts in sorted(stats.topics.items()):
                family.add_sample(name + "_total", {"topic": topic}, getattr(counts, field))
            yield family

    # -- RequestMetrics ----------------------------------------------------------------------------

    def _request_metrics(self) -> Iterator[Metric]:
        stats = self.broker.stats
        requests = CounterMetricFamily(
            "kafka_network_requestmetrics_requests",
            "Requests answered, per api and version (RequestsPerSec count).",
            labels=["request", "version"],
        )
        for api_key, histogram in sorted(stats.request_times.items()):
            for version, count in enumerate(histogram.by_version):
                if count:
                    requests.add_metric([_api_name(api_key), str(version)], count)
        yield requests
        times = HistogramMetricFamily(
            "kafka_network_requestmetrics_totaltimems",
            "Time from a request's arrival until its response is queued for sending, in ms "
            "(Kafka's TotalTimeMs; Brook has no request queue, so no split).",
            labels=["request"],
        )
        for api_key, histogram in sorted(stats.request_times.items()):
            times.add_metric([_api_name(api_key)], histogram.cumulative(), histogram.sum_ms)
        yield times

    # -- ReplicaManager ----------------------------------------------------------------------------

    def _replica_metrics(self) -> Iterator[Metric]:
        replicas = self.broker.replica_manager
        partitions = leaders = under_replicated = 0
        for partition in replicas.partitions.values():
            partitions += 1
            if partition.is_leader:
                leaders += 1
                state = partition.state
                if len(state.isr) < len(state.replicas):
                    under_replicated += 1
        for short, help_text, value in (
            ("partitioncount", "Partitions hosted by this broker.", partitions),
            ("leadercount", "Partitions this broker leads.", leaders),
            ("underreplicatedpartitions", "Led partitions whose ISR is smaller than their replicas.",
             under_replicated),
        ):  # fmt: skip
            yield GaugeMetricFamily(f"kafka_server_replicamanager_{short}", help_text, value=value)
        counts = replicas.isr_changes
        yield CounterMetricFamily(
            "kafka_server_replicamanager_isrshrinks", "Committed ISR shrinks (IsrShrinksPerSec count).",
            value=counts.shrinks,
        )  # fmt: skip
        yield CounterMetricFamily(
            "kafka_server_replicamanager_isrexpands", "Committed ISR expands (IsrExpandsPerSec count).",
            value=counts.expands,
        )  # fmt: skip

    # -- KafkaController ---------------------------------------------------------------------------

    def _controller_metrics(self) -> Iterator[Metric]:
        broker = self.broker
        active, offline = 0, 0
        cluster = broker.zk_cluster
        if cluster is not None:
            driver = cluster.controller
            if cluster.is_active_controller and driver is not None:
                active = 1
                offline = len(driver.controller.context.partitions_with_offline_leader())
        elif not broker.cluster_mode:
            # The embedded node is its own controller; its offline partitions are those of
            # failed log dirs.
            active = 1
            replicas = broker.replica_manager
            offline = len(replicas.offline_partitions) + sum(
                1 for tp in replicas.partitions if replicas.is_offline(tp)
            )
        yield GaugeMetricFamily(
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1 on the active controller, 0 on every other broker.",
            value=active,
        )
        yield GaugeMetricFamily(
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a live leader (reported by the active controller only).",
            value=offline,
        )

    # -- Log ---------------------------------------------------------------------------------------

    def _log_sizes(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "kafka_log_log_size", "Bytes of a partition's log on disk.", labels=["topic", "partition"]
        )
        for (topic, index), partition in sorted(self.broker.replica_manager.partitions.items()):
            family.add_metric([topic, str(index)], partition.log.size_in_bytes())
        yield family

    # -- network -----------------------------------------------------------------------------------

    def _network_metrics(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "kafka_network_socketserver_networkprocessoravgidlepercent",
            "Idle fraction of the event loop (which does the network processors' work) since the "
            "previous scrape: 1 - its thread's CPU time / wall time.",
            value=self.idle.read(),
        )
        server = self.broker.server
        per_listener: dict[str, int] = {}
        if server is not None:
            for address, _ in server.listeners:
                per_listener[address.name] = 0
            for conn in server.connections:
                per_listener[conn.listener] = per_listener.get(conn.listener, 0) + 1
        family = GaugeMetricFamily(
            "kafka_server_socket_server_metrics_connection_count",
            "Open client connections per listener (one event loop: networkProcessor 0).",
            labels=["listener", "networkProcessor"],
        )
        for listener, count in sorted(per_listener.items()):
            family.add_metric([listener, "0"], count)
        yield family

    # -- client quotas (the JMX exporter's names of kafka.server:type=Produce|Fetch|Request) -------

    def _quota_metrics(self) -> Iterator[Metric]:
        service = self.broker._quota_service  # never built by a scrape
        if service is None:
            return
        quotas = service.quotas
        now = quotas.now_ms()
        for kind, family_quotas, rate_name in (
            ("produce", quotas.produce, "byte_rate"),
            ("fetch", quotas.fetch, "byte_rate"),
            ("request", quotas.request, "request_time"),
        ):
            rate = GaugeMetricFamily(
                f"kafka_server_{kind}_{rate_name}",
                f"{kind} quota rate per user/client-id (bytes/s; request: % of one thread)",
                labels=["user", "client_id"],
            )
            for (user, client_id), measured in sorted(family_quotas.rates.items()):
                total, window = measured.total_and_window(now)
                rate.add_metric([user, client_id], total / (window / 1000.0))
            yield rate
            throttle = GaugeMetricFamily(
                f"kafka_server_{kind}_throttle_time",
                f"Average {kind} throttle time in ms per user/client-id since start",
                labels=["user", "client_id"],
            )
            for (user, client_id), (count, total_ms) in sorted(family_quotas.throttles.items()):
                throttle.add_metric([user, client_id], total_ms / count)
            yield throttle

    # -- consumer groups (kafka_exporter's names) --------------------------------------------------

    def _group_lag(self) -> Iterator[Metric]:
        labels = ["consumergroup", "topic", "partition"]
        current = GaugeMetricFamily(
            "kafka_consumergroup_current_offset",
            "Committed offset of a group on a partition (groups this broker coordinates).",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "High watermark (the log end consumers see, from the leader) minus the group's "
            "committed offset, for the groups this broker coordinates.",
            labels=labels,
        )
        replicas = self.broker.replica_manager
        for group_id, group in sorted(self.broker.group_coordinator.groups.items()):
            for (topic, index), committed in sorted(group.offsets.items()):
                offset = committed.value.offset
                values = [group_id, topic, str(index)]
                current.add_metric(values, offset)
                tp = TopicPartition(topic, index)
                partition = replicas.partitions.get(tp)
                if partition is not None and partition.is_leader:
                    end: int | None = partition.high_watermark
                else:
                    end = self.remote_end_offsets.get(tp)
                if end is not None:
                    lag.add_metric(values, max(0, end - offset))
        yield current
        yield lag
