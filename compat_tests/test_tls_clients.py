"""Stock clients over SSL against a broker process: confluent-kafka, kafka-python, aiokafka and
kcat, each without and with a client certificate; with ``ssl.client.auth=required`` a client
without a certificate, or with an expired or untrusted one, is refused and the broker serves on.

The certificates are made in the test (tests/security/certs.py): a CA, a server certificate for
localhost and 127.0.0.1, and client certificates (valid, expired, from another CA).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compat_tests.clients.roundtrips import aiokafka_roundtrip, confluent_roundtrip, kafka_python_roundtrip
from compat_tests.clients.tools import require_kcat
from compat_tests.harness import BrokerProcess, free_port
from tests.security.certs import Identity, Pki, make_pki, ssl_listener_settings

MESSAGES = [f"tls-{i}".encode() * (1 + i % 50) for i in range(200)]
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@dataclass(frozen=True)
class TlsBroker:
    process: BrokerProcess
    bootstrap: str  # the SSL listener


def _start(tmp: Path, pki: Pki, client_auth: str) -> TlsBroker:
    """A broker whose SSL listener is on its own port; the PLAINTEXT one (the harness's
    readiness check and inter-broker traffic) is on ``process.port``."""
    process = BrokerProcess(tmp / "data")
    ssl_port = free_port()
    process.overrides = {
        **ssl_listener_settings(pki, client_auth=client_auth),
        "listeners": f"PLAINTEXT://127.0.0.1:{process.port},SSL://127.0.0.1:{ssl_port}",
        "security.inter.broker.protocol": "PLAINTEXT",
        "offsets.topic.replication.factor": "1",
        "num.partitions": "2",
    }
    process.start()
    return TlsBroker(process, f"127.0.0.1:{ssl_port}")


@pytest.fixture(scope="module")
def requested(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsBroker]:
    broker = _start(Path(tmp_path_factory.mktemp("tls-requested")), pki, "requested")
    yield broker
    assert broker.process.alive(), broker.process.log_tail()
    broker.process.stop()


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsBroker]:
    broker = _start(Path(tmp_path_factory.mktemp("tls-required")), pki, "required")
    yield broker
    assert broker.process.alive(), broker.process.log_tail()
    broker.process.stop()


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- confluent-kafka (librdkafka) ------------------------------------------------------------------


def _confluent_settings(broker: TlsBroker, pki: Pki, identity: Identity | None) -> dict[str, object]:
    settings: dict[str, object] = {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
    }
    if identity is not None:
        settings["ssl.certificate.location"] = str(identity.cert)
        settings["ssl.key.location"] = str(identity.key)
    return settings


def _confluent_roundtrip(broker: TlsBroker, pki: Pki, identity: Identity | None) -> None:
    pytest.importorskip("confluent_kafka")
    settings = _confluent_settings(broker, pki, identity)
    got = confluent_roundtrip(settings, _topic("confluent-tls"), MESSAGES, TIMEOUT)
    assert sorted(got) == sorted(MESSAGES)


@pytest.mark.parametrize("with_certificate", [False, True])
def test_confluent_kafka(requested: TlsBroker, pki: Pki, with_certificate: bool) -> None:
    _confluent_roundtrip(requested, pki, pki.client if with_certificate else None)


def test_confluent_kafka_with_required_client_auth(required: TlsBroker, pki: Pki) -> None:
    _confluent_roundtrip(required, pki, pki.client)


@pytest.mark.parametrize("who", ["none", "expired", "untrusted"])
def test_required_client_auth_refuses_bad_certificates(required: TlsBroker, pki: Pki, who: str) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    admin_module = pytest.importorskip("confluent_kafka.admin")
    identity = {"none": None, "expired": pki.expired, "untrusted": pki.untrusted}[who]
    admin = admin_module.AdminClient(_confluent_settings(required, pki, identity))
    with pytest.raises(confluent_kafka.KafkaException):
        admin.list_topics(timeout=5)
    # The broker serves on: a good client right after.
    good = admin_module.AdminClient(_confluent_settings(required, pki, pki.client))
    assert good.list_topics(timeout=TIMEOUT).brokers
    assert required.process.alive()


# -- kafka-python ------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_certificate", [False, True])
def test_kafka_python(requested: TlsBroker, pki: Pki, with_certificate: bool) -> None:
    pytest.importorskip("kafka")
    settings: dict[str, object] = {
        "bootstrap_servers": requested.bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": str(pki.ca),
    }
    if with_certificate:
        settings.update(ssl_certfile=str(pki.client.cert), ssl_keyfile=str(pki.client.key))
    got = kafka_python_roundtrip(settings, _topic("kafka-python-tls"), MESSAGES, TIMEOUT)
    assert sorted(got) == sorted(MESSAGES)


# -- aiokafka ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_certificate", [False, True])
def test_aiokafka(requested: TlsBroker, pki: Pki, with_certificate: bool) -> None:
    pytest.importorskip("aiokafka")
    from aiokafka.helpers import create_ssl_context

    context = create_ssl_context(
        cafile=str(pki.ca),
        certfile=str(pki.client.cert) if with_certificate else None,
        keyfile=str(pki.client.key) if with_certificate else None,
    )
    settings = {"bootstrap_servers": requested.bootstrap, "security_protocol": "SSL", "ssl_context": context}
    got = aiokafka_roundtrip(settings, _topic("aiokafka-tls"), MESSAGES, TIMEOUT)
    assert sorted(got) == sorted(MESSAGES)


# -- kcat --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_certificate", [False, True])
def test_kcat(requested: TlsBroker, pki: Pki, with_certificate: bool) -> None:
    kcat = require_kcat()
    options = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki.ca}"]
    if with_certificate:
        options += [
            "-X",
            f"ssl.certificate.location={pki.client.cert}",
            "-X",
            f"ssl.key.location={pki.client.key}",
        ]
    topic = _topic("kcat-tls")
    values = [f"kcat-{i}" for i in range(50)]
    subprocess.run(
        [kcat, "-b", requested.bootstrap, "-P", "-t", topic, *options],
        input="\n".join(values).encode(),
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )
    consumed = subprocess.run(
        [kcat, "-b", requested.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "50", *options],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )
    assert sorted(consumed.stdout.decode().split("\n")[:50]) == sorted(values)


# -- kafkajs (Node) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_certificate", [False, True])
def test_kafkajs(requested: TlsBroker, pki: Pki, with_certificate: bool) -> None:
    from compat_tests.clients.node import run_kafkajs
    from compat_tests.clients.tools import require_kafkajs

    require_kafkajs()
    tls: dict[str, str] = {"ca": str(pki.ca)}
    if with_certificate:
        tls.update(cert=str(pki.client.cert), key=str(pki.client.key))
    topic = _topic("kafkajs-tls")
    values = [f"kafkajs-{i}" for i in range(50)]
    run_kafkajs(
        {
            "op": "admin",
            "brokers": [requested.bootstrap],
            "ssl": tls,
            "actions": [{"createTopics": {"topics": [{"topic": topic, "numPartitions": 2}]}}],
        }
    )
    run_kafkajs(
        {
            "op": "produce",
            "brokers": [requested.bootstrap],
            "ssl": tls,
            "topic": topic,
            "acks": -1,
            "compression": "none",
            "idempotent": False,
            "batches": [[{"key": None, "value": v} for v in values]],
        }
    )
    result = run_kafkajs(
        {
            "op": "consume",
            "brokers": [requested.bootstrap],
            "ssl": tls,
            "topic": topic,
            "groupId": topic,
            "fromBeginning": True,
            "count": len(values),
            "timeoutMs": 30_000,
        }
    )
    assert sorted(m["value"] for m in result["messages"]) == sorted(values)
