"""The counters the request path updates: plain ints in dicts, read by the collector at scrape
time (:mod:`broker.metrics.collector`). No ``prometheus_client`` here: its metric objects take a
lock per update, and the produce path counts once per batch, not per record.

Everything here is touched on the event loop only, so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds (ms) of the request-time histogram buckets; the last bucket is +Inf.
REQUEST_TIME_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
)  # fmt: skip


#: Pseudo api keys of Kafka's RequestMetrics for Fetch split by who fetches (Kafka records a
#: fetch under both "Fetch" and one of these).
FETCH_CONSUMER = -1
FETCH_FOLLOWER = -2
PSEUDO_API_NAMES = {FETCH_CONSUMER: "FetchConsumer", FETCH_FOLLOWER: "FetchFollower"}


class TopicCounts:
    """Kafka's BrokerTopicMetrics of one topic (or of all: the ``None`` key)."""

    __slots__ = ("bytes_in", "bytes_out", "messages_in")

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.bytes_out = 0


#: Request versions counted per api: above every version Kafka 3.9 defines (the server
#: dispatches only versions its handler serves, so a peer cannot send a larger one here).
MAX_VERSIONS = 64


class RequestTimes:
    """One api's request counts per version and its total-time histogram (non-cumulative
    bucket counts)."""

    __slots__ = ("buckets", "by_version", "sum_ms")

    def __init__(self) -> None:
        self.by_version = [0] * MAX_VERSIONS
        self.sum_ms = 0.0
        self.buckets = [0] * (len(REQUEST_TIME_BUCKETS_MS) + 1)

    @property
    def count(self) -> int:
        return sum(self.by_version)

    def observe(self, version: int, ms: float) -> None:
        self.by_version[version] += 1
        self.sum_ms += ms
        self.buckets[bisect_left(REQUEST_TIME_BUCKETS_MS, ms)] += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus histograms expose them, ending with +Inf."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*REQUEST_TIME_BUCKETS_MS, float("inf")), self.buckets, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class IsrChangeCounts:
    """Kafka's ReplicaManager IsrShrinksPerSec / IsrExpandsPerSec, as counts."""

    __slots__ = ("expands", "shrinks")

    def __init__(self) -> None:
        self.shrinks = 0
        self.expands = 0


class BrokerStats:
    """A broker's counters. One per :class:`~broker.app.Broker`: several brokers in a process
    (embedded, tests) never share them."""

    __slots__ = ("all_topics", "isr_changes", "request_times", "topics")

    def __init__(self) -> None:
        self.topics: dict[str, TopicCounts] = {}
        self.all_topics = TopicCounts()
        #: api key -> requests answered per version (Kafka's RequestsPerSec has both labels) and
        #: the total-time histogram.
        self.request_times: dict[int, RequestTimes] = {}
        self.isr_changes = IsrChangeCounts()

    def topic(self, name: str) -> TopicCounts:
        counts = self.topics.get(name)
        if counts is None:
            counts = self.topics[name] = TopicCounts()
        return counts

    def produced(self, topic: str, messages: int, size: int) -> None:
        """A batch appended as leader: its record count and its size as the client sent it
        (Kafka marks MessagesInPerSec with the appended count and BytesInPerSec with the
        request's ``records.sizeInBytes``)."""
        counts = self.topic(topic)
        counts.messages_in += messages
        counts.bytes_in += size
        every = self.all_topics
        every.messages_in += messages
        every.bytes_in += size

    def fetched(self, topic: str, size: int) -> None:
        """Record bytes of one partition in a consumer's fetch response (BytesOutPerSec)."""
        self.topic(topic).bytes_out += size
        self.all_topics.bytes_out += size

    def request_done(self, api_key: int, version: int, elapsed_ms: float) -> None:
        """Once per answered request (on the loop): a few list increments, no allocation."""
        times = self.request_times.get(api_key)
        if times is None:
            times = self.request_times[api_key] = RequestTimes()
        times.observe(version, elapsed_ms)

    def forget_topic(self, name: str) -> None:
        """A deleted topic's series go (Kafka removes a deleted topic's metrics)."""
        self.topics.pop(name, None)
