"""What importing the broker loads: nothing a first start does not need (the time to a first
round trip of an embedded broker is mostly imports; bench/bench_embedded.py)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import broker.cluster.controller as controller
import broker.handlers.fetch as fetch_handler
import broker.replica.fetch_session_cache as fetch_sessions

REPO = Path(__file__).resolve().parents[2]

#: Loaded at first use only: the record codecs, crc32c's package (its __init__ imports
#: importlib.metadata and argparse), the cluster controller, the handlers of unused apis.
NOT_AT_START = (
    "cramjam",
    "lz4",
    "zstandard",
    "importlib.metadata",
    "argparse",
    "broker.cluster.controller.controller",
    "broker.cluster.controller.context",
    "broker.handlers.produce",
    "broker.handlers.leader_and_isr",
    "broker.txn.coordinator",
    "protocol.messages.produce_request",
    "protocol.messages.fetch_response",
    # the group coordinator (first group request, or a start that finds __consumer_offsets)
    "broker.group.coordinator",
    "broker.group.store",
    # the cleaner (first cleaner run), magic 0/1 records (first old client), LZ4's xxh32
    "storage.cleaner",
    "storage.retention",
    "protocol.records.legacy",
    "protocol.records.convert",
    "protocol.records.xxh32",
    # cluster mode only
    "broker.cluster.metadata_cache",
    "broker.replica.selector",
    "protocol.messages.update_metadata_request",
    # the embedded broker runs asyncio's loop; decimal only renders rare doubles
    "uvloop",
    "decimal",
    "prometheus_client",  # only with brook.metrics.listener set
)


def test_importing_the_broker_loads_none_of_what_waits_for_first_use() -> None:
    code = (
        "import sys\n"
        "import broker.app, broker.embedding\n"
        f"print([name for name in {NOT_AT_START!r} if name in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "[]"


def test_the_controller_package_exports_resolve_to_their_modules() -> None:
    assert set(controller.__all__) == set(controller._MODULE_OF)
    for name in controller.__all__:
        module = importlib.import_module(f"broker.cluster.controller.{controller._MODULE_OF[name]}")
        assert getattr(controller, name) is getattr(module, name)
    assert not hasattr(controller, "NoSuchName")


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

#: What an embedded broker that created a topic, took a record and served it back has not loaded
#: (issue 17: the first broker of a process reaches its first round trip in ~150 ms, mostly imports;
#: each name is loaded only by the feature that needs it).
NOT_AFTER_PRODUCE_AND_FETCH = (
    BROOK_MODULES
    + LIBRARIES
    + (
        "broker.group.coordinator",
        "storage.cleaner",
        "broker.cluster.metadata_cache",
        "broker.replica.selector",
        "protocol.records.legacy",
        "uvloop",
        "encodings.idna",  # bound and connected with ASCII host names (broker.network.hosts)
    )
)

SERVE_WITHOUT_GROUPS = f"""
import sys, time
import broker
from broker.admin_client import KafkaAdmin
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest, TopicProduceData
from protocol.records import Record, build_batch, decode_batch

batch = bytes(build_batch([Record(0, 0, None, b"v")], base_timestamp=int(time.time() * 1000)))
with broker.embedded() as b, KafkaAdmin(b.bootstrap_servers) as admin:
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
    loaded = [name for name in {NOT_AFTER_PRODUCE_AND_FETCH!r} if name in sys.modules]
    assert loaded == [], loaded
    missing = [name for name in {LOADED!r} if name not in sys.modules]
    assert missing == [], missing  # the round trip ran the paths the list is about
    assert b.call(lambda broker: broker.built_group_coordinator) is None
    assert "__consumer_offsets" not in admin.list_topics(internal=True)

    # A group lookup builds the coordinator (and, as in Kafka, creates __consumer_offsets).
    found = admin._call(FindCoordinatorRequest(key="g"), 3)
    assert found.error_code == 0, found
    assert b.call(lambda broker: broker.built_group_coordinator.active)
    assert "__consumer_offsets" in admin.list_topics(internal=True)
"""


def test_serving_produce_and_fetch_loads_no_group_coordinator_and_a_group_lookup_does() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_GROUPS],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()


def test_a_restart_that_finds_consumer_offsets_builds_the_coordinator_at_start(tmp_path: Path) -> None:
    import broker
    from broker.admin_client import KafkaAdmin
    from protocol.messages.find_coordinator_request import FindCoordinatorRequest

    with broker.embedded(log_dirs=str(tmp_path)) as b:
        assert b.call(lambda broker: broker.built_group_coordinator) is None
        with KafkaAdmin(b.bootstrap_servers) as admin:
            assert admin._call(FindCoordinatorRequest(key="g"), 3).error_code == 0
        b.restart()
        coordinator = b.call(lambda broker: broker.built_group_coordinator)
        assert coordinator is not None and coordinator.active


def test_the_named_modules_exist() -> None:
    """A renamed module would make the check below pass vacuously."""
    for name in BROOK_MODULES + LOADED:
        assert importlib.util.find_spec(name) is not None, name


def test_the_sessionless_fast_path_uses_the_cache_s_constants() -> None:
    """The Fetch handler answers "no session" without the cache; it must mean what the cache
    means by it (KIP-227: session id 0 with the final epoch)."""
    assert fetch_handler._NO_SESSION == fetch_sessions.NO_SESSION
    assert fetch_handler._FINAL_EPOCH == fetch_sessions.FINAL_EPOCH
