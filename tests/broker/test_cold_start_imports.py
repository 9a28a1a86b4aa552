"""What an embedded broker's first start and first round trip load (issue 17: the first broker of
a process must reach a produce + consume round trip in ~150 ms, and that time is mostly imports;
bench/bench_embedded.py). Each name below is loaded only by the feature that needs it; the test
fails when a change imports one of them again on the plain path."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import broker.handlers.fetch as fetch_handler
import broker.replica.fetch_session_cache as fetch_sessions

REPO = Path(__file__).resolve().parents[2]

#: Brook's modules that a PLAINTEXT broker without authorizer, quotas, metrics, ZooKeeper or
#: transactions never needs to start, create a topic, take a record and serve it back.
BROOK_MODULES = (
    # TLS and SASL: only with such a listener (the principal mapper compiles its rule regexes)
    "broker.security.ssl_principal",
    "broker.security.ssl_context",
    "broker.security.store_reload",
    "broker.security.sasl_config",
    "broker.security.sasl_server",
    "broker.security.scram",
    "broker.security.credentials",
    "broker.scram_credentials",
    # ACLs are checked only with authorizer.class.name set
    "broker.security.authorizer",
    "broker.security.acl_file",
    # KIP-890 verification: a transactional produce only
    "broker.replica.txn_verification",
    "protocol.messages.add_partitions_to_txn_request",
    "broker.txn.coordinator",
    # KIP-227 fetch sessions: a sessionless fetch (librdkafka's) does not build the cache
    "broker.replica.fetch_session_cache",
    # metrics endpoint, client quotas, ZooKeeper mode
    "broker.metrics.endpoint",
    "broker.quotas.service",
    "broker.cluster.zk_mode",
    "broker.cluster.zk_admin",
    "broker.cluster.metadata_cache",
    # the admin client's requests other than CreateTopics
    "protocol.messages.delete_topics_request",
    "protocol.messages.describe_configs_request",
    # the group coordinator: first group request
    "broker.group.coordinator",
)

#: Libraries loaded only by the features above (or by none of Brook's paths at all).
LIBRARIES = (
    "prometheus_client",
    "kazoo",
    "cryptography",
    "cramjam",
    "lz4",
    "zstandard",
    "uvloop",
    "hypothesis",
)

#: What the round trip must have loaded: proof that it ran the paths the list is about.
LOADED = (
    "broker.handlers.produce",
    "broker.handlers.fetch",
    "broker.handlers.create_topics",
    "broker.network.connection",
)

FIRST_ROUND_TRIP = f"""
import sys, time
import broker

b = broker.embedded()
b.start()
from broker.admin_client import KafkaAdmin
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch, decode_batch

batch = bytes(build_batch([Record(0, 0, None, b"v")], base_timestamp=int(time.time() * 1000)))
with KafkaAdmin(b.bootstrap_servers) as admin:
    admin.create_topic("t")
    data = [TopicProduceData("t", [PartitionProduceData(0, batch)])]
    produced = admin._call(ProduceRequest(acks=1, timeout_ms=5000, topic_data=data), 9)
    assert produced.responses[0].partition_responses[0].error_code == 0, produced
    # As librdkafka fetches: v12, no fetch session (session id 0, epoch -1).
    fetch = FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
        session_id=0, session_epoch=-1,
        topics=[FetchTopic("t", partitions=[FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 20)])],
    )
    fetched = admin._call(fetch, 12)
    assert fetched.session_id == 0, fetched
    header, records = decode_batch(fetched.responses[0].partitions[0].records)
    assert [r.value for r in records] == [b"v"], fetched
b.stop()
print([name for name in {BROOK_MODULES + LIBRARIES!r} if name in sys.modules])
print([name for name in {LOADED!r} if name not in sys.modules])
"""


def test_the_named_modules_exist() -> None:
    """A renamed module would make the check below pass vacuously."""
    for name in BROOK_MODULES + LOADED:
        assert importlib.util.find_spec(name) is not None, name


def test_a_first_start_and_round_trip_load_none_of_the_optional_features() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_ROUND_TRIP],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    loaded_optional, missing = result.stdout.decode().strip().splitlines()[-2:]
    assert loaded_optional == "[]"
    assert missing == "[]"


def test_the_sessionless_fast_path_uses_the_cache_s_constants() -> None:
    """The Fetch handler answers "no session" without the cache; it must mean what the cache
    means by it (KIP-227: session id 0 with the final epoch)."""
    assert fetch_handler._NO_SESSION == fetch_sessions.NO_SESSION
    assert fetch_handler._FINAL_EPOCH == fetch_sessions.FINAL_EPOCH
