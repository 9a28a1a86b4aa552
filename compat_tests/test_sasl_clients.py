"""Stock clients over SASL_PLAINTEXT and SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
against a broker process: confluent-kafka, kafka-python, aiokafka, kcat and kafkajs each produce
and consume; a wrong password and an unknown user get the authentication error each client
reports, and the broker keeps serving. The SCRAM users are created with ``brook configs --alter
--entity-type users`` over SASL_SSL as the PLAIN admin (kafka-configs.sh's way), and a user created
while the broker runs authenticates on its next connection.

The PKI comes from tests/security/certs.py (a CA and a server certificate for 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compat_tests.clients.roundtrips import aiokafka_roundtrip, confluent_roundtrip, kafka_python_roundtrip
from compat_tests.clients.tools import require_kcat
from compat_tests.harness import BrokerProcess, free_port
from compat_tests.test_cli import ok
from tests.security.certs import Pki, make_pki, ssl_listener_settings

TIMEOUT = 30.0
MESSAGES = [f"sasl-{i}".encode() * (1 + i % 20) for i in range(60)]
PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
#: mechanism -> (user, password) that authenticates.
USERS = {
    "PLAIN": ("alice", "alice-secret"),
    "SCRAM-SHA-256": ("bob", "bob-secret"),
    "SCRAM-SHA-512": ("carol", "carol-secret"),
}
PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = tuple(USERS)


@dataclass(frozen=True)
class SaslBroker:
    process: BrokerProcess
    ports: dict[str, int]
    pki: Pki

    def bootstrap(self, protocol: str) -> str:
        return f"127.0.0.1:{self.ports[protocol]}"


def _client_properties(
    tmp: Path, broker: SaslBroker, protocol: str, mechanism: str, user: str, password: str
) -> str:
    module = (
        "org.apache.kafka.common.security.plain.PlainLoginModule"
        if mechanism == "PLAIN"
        else "org.apache.kafka.common.security.scram.ScramLoginModule"
    )
    path = tmp / f"{protocol}-{mechanism}-{user}.properties"
    lines = [
        f"security.protocol={protocol}",
        f"sasl.mechanism={mechanism}",
        f'sasl.jaas.config={module} required username="{user}" password="{password}";',
    ]
    if protocol == "SASL_SSL":
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={broker.pki.ca}"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    base = Path(tmp_path_factory.mktemp("sasl"))
    pki = make_pki(base / "pki")
    process = BrokerProcess(base / "data")
    ports = {protocol: free_port() for protocol in PROTOCOLS}
    settings = ssl_listener_settings(pki)
    process.overrides = {
        **settings,
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{process.port},SASL_PLAINTEXT://127.0.0.1:{ports['SASL_PLAINTEXT']},"
            f"SASL_SSL://127.0.0.1:{ports['SASL_SSL']}"
        ),
        "security.inter.broker.protocol": "PLAINTEXT",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "sasl.jaas.config": SCRAM_JAAS,
        "offsets.topic.replication.factor": "1",
        "num.partitions": "2",
    }
    process.start()
    broker = SaslBroker(process, ports, pki)
    admin = _client_properties(base, broker, "SASL_SSL", "PLAIN", "admin", "admin-secret")
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        user, password = USERS[mechanism]
        out = ok(
            "configs", "--bootstrap-server", broker.bootstrap("SASL_SSL"), "--command-config", admin,
            "--alter", "--entity-type", "users", "--entity-name", user,
            "--add-config", f"{mechanism}=[iterations=8192,password={password}]",
        )  # fmt: skip
        assert out == f"Completed updating config for user {user}.\n"
    as_bob = _client_properties(base, broker, "SASL_PLAINTEXT", "SCRAM-SHA-256", *USERS["SCRAM-SHA-256"])
    described = ok(
        "configs", "--bootstrap-server", broker.bootstrap("SASL_PLAINTEXT"), "--command-config", as_bob,
        "--describe", "--entity-type", "users",
    )  # fmt: skip
    assert described.splitlines() == [
        "SCRAM credential configs for user-principal 'bob' are SCRAM-SHA-256=iterations=8192",
        "SCRAM credential configs for user-principal 'carol' are SCRAM-SHA-512=iterations=8192",
    ]
    yield broker
    assert process.alive(), process.log_tail()
    tail = process.log_text()
    for secret in ("alice-secret", "bob-secret", "carol-secret", "admin-secret"):
        assert secret not in tail, f"{secret} in the broker's log"
    process.stop()


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


CASES = [(protocol, mechanism) for protocol in PROTOCOLS for mechanism in MECHANISMS]


# -- confluent-kafka ---------------------------------------------------------------------------------


def _confluent(
    broker: SaslBroker, protocol: str, mechanism: str, user: str, password: str
) -> dict[str, object]:
    settings: dict[str, object] = {
        "bootstrap.servers": broker.bootstrap(protocol),
        "security.protocol": protocol,
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if protocol == "SASL_SSL":
        settings["ssl.ca.location"] = str(broker.pki.ca)
    return settings


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_confluent_kafka(sasl_broker: SaslBroker, protocol: str, mechanism: str) -> None:
    pytest.importorskip("confluent_kafka")
    settings = _confluent(sasl_broker, protocol, mechanism, *USERS[mechanism])
    got = confluent_roundtrip(settings, _topic("confluent-sasl"), MESSAGES, TIMEOUT)
    assert sorted(got) == sorted(MESSAGES)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_confluent_kafka_bad_credentials(sasl_broker: SaslBroker, mechanism: str, who: str) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    user, password = USERS[mechanism]
    if who == "wrong-password":
        password = "not-" + password
    else:
        user = "mallory"
    errors: list[object] = []
    settings = {
        **_confluent(sasl_broker, "SASL_PLAINTEXT", mechanism, user, password),
        "error_cb": errors.append,
    }
    producer = confluent_kafka.Producer(settings)
    producer.produce(_topic("refused"), b"x")
    producer.flush(3)
    codes = {error.code() for error in errors}  # type: ignore[attr-defined]
    assert confluent_kafka.KafkaError._AUTHENTICATION in codes, errors
    texts = " ".join(str(error) for error in errors)
    expected = (
        "Authentication failed: Invalid username or password"
        if mechanism == "PLAIN"
        else "Authentication failed during authentication due to invalid credentials with SASL mechanism "
        + mechanism
    )
    assert expected in texts
    # The broker serves on.
    del producer  # its retries stop with it
    admin_module = pytest.importorskip("confluent_kafka.admin")
    admin = admin_module.AdminClient(_confluent(sasl_broker, "SASL_PLAINTEXT", mechanism, *USERS[mechanism]))
    assert admin.list_topics(timeout=TIMEOUT).brokers


# -- kafka-python ------------------------------------------------------------------------------------


def _kafka_python(
    broker: SaslBroker, protocol: str, mechanism: str, user: str, password: str
) -> dict[str, object]:
    settings: dict[str, object] = {
        "bootstrap_servers": broker.bootstrap(protocol),
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }
    if protocol == "SASL_SSL":
        settings["ssl_cafile"] = str(broker.pki.ca)
    return settings


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_kafka_python(sasl_broker: SaslBroker, protocol: str, mechanism: str) -> None:
    pytest.importorskip("kafka")
    settings = _kafka_python(sasl_broker, protocol, mechanism, *USERS[mechanism])
    got = kafka_python_roundtrip(settings, _topic("kafka-python-sasl"), MESSAGES, TIMEOUT)
    assert sorted(got) == sorted(MESSAGES)


# -- aiokafka ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_aiokafka(sasl_broker: SaslBroker, protocol: str, mechanism: str) -> None:
    pytest.importorskip("aiokafka")
    from aiokafka.helpers import create_ssl_context

    user, password = USERS[mechanism]
    common: dict[str, object] = {
        "bootstrap_servers": sasl_broker.bootstrap(protocol),
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }
    if protocol == "SASL_SSL":
        common["ssl_context"] = create_ssl_context(cafile=str(sasl_broker.pki.ca))
    got = aiokafka_roundtrip(common, _topic("aiokafka-sasl"), MESSAGES, TIMEOUT)
    assert sorted(got) == sorted(MESSAGES)


# -- kcat --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_kcat(sasl_broker: SaslBroker, protocol: str, mechanism: str) -> None:
    kcat = require_kcat()
    user, password = USERS[mechanism]
    options = [
        "-X", f"security.protocol={protocol}", "-X", f"sasl.mechanisms={mechanism}",
        "-X", f"sasl.username={user}", "-X", f"sasl.password={password}",
    ]  # fmt: skip
    if protocol == "SASL_SSL":
        options += ["-X", f"ssl.ca.location={sasl_broker.pki.ca}"]
    topic = _topic("kcat-sasl")
    values = [f"kcat-{i}" for i in range(50)]
    bootstrap = sasl_broker.bootstrap(protocol)
    produced = subprocess.run(
        [kcat, "-b", bootstrap, "-P", "-t", topic, *options],
        input="\n".join(values).encode(),
        check=False,
        timeout=TIMEOUT,
        capture_output=True,
    )
    assert produced.returncode == 0, produced.stderr.decode(errors="replace")[-2000:]
    consumed = subprocess.run(
        [kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "50", *options],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )
    assert sorted(consumed.stdout.decode().split("\n")[:50]) == sorted(values)


# -- kafkajs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafkajs(sasl_broker: SaslBroker, mechanism: str) -> None:
    from compat_tests.clients.node import run_kafkajs
    from compat_tests.clients.tools import require_kafkajs

    require_kafkajs()
    user, password = USERS[mechanism]
    common = {
        "brokers": [sasl_broker.bootstrap("SASL_SSL")],
        "ssl": {"ca": str(sasl_broker.pki.ca)},
        "sasl": {"mechanism": mechanism.lower(), "username": user, "password": password},
    }
    topic = _topic("kafkajs-sasl")
    values = [f"kafkajs-{i}" for i in range(30)]
    run_kafkajs({**common, "op": "admin", "actions": [{"createTopics": {"topics": [{"topic": topic}]}}]})
    run_kafkajs(
        {
            **common,
            "op": "produce",
            "topic": topic,
            "acks": -1,
            "compression": "none",
            "idempotent": False,
            "batches": [[{"key": None, "value": v} for v in values]],
        }
    )
    result = run_kafkajs(
        {
            **common,
            "op": "consume",
            "topic": topic,
            "groupId": topic,
            "fromBeginning": True,
            "count": len(values),
            "timeoutMs": 30_000,
        }
    )
    assert sorted(m["value"] for m in result["messages"]) == sorted(values)


# -- bad credentials with the other clients ----------------------------------------------------------


def _bad(mechanism: str, who: str) -> tuple[str, str]:
    user, password = USERS[mechanism]
    return (user, "not-" + password) if who == "wrong-password" else ("mallory", password)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_aiokafka_bad_credentials(
    sasl_broker: SaslBroker, mechanism: str, who: str, caplog: pytest.LogCaptureFixture
) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    from aiokafka.errors import KafkaConnectionError, KafkaError

    user, password = _bad(mechanism, who)

    async def start() -> None:
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=sasl_broker.bootstrap("SASL_PLAINTEXT"),
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_plain_username=user,
            sasl_plain_password=password,
            request_timeout_ms=10_000,
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    # aiokafka logs the broker's answer and raises a generic "Unable to bootstrap".
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises((KafkaConnectionError, KafkaError)):
        asyncio.run(asyncio.wait_for(start(), TIMEOUT))
    assert "SaslAuthenticationFailed: Authentication failed" in caplog.text, caplog.text
    assert sasl_broker.process.alive()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat_bad_credentials(sasl_broker: SaslBroker, mechanism: str) -> None:
    user, password = _bad(mechanism, "wrong-password")
    result = subprocess.run(
        [
            require_kcat(), "-b", sasl_broker.bootstrap("SASL_PLAINTEXT"), "-L", "-m", "10",
            "-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr, result.stderr[-2000:]
    assert sasl_broker.process.alive()


# -- credentials created while serving ---------------------------------------------------------------


def test_new_scram_user_authenticates_on_its_next_connection(sasl_broker: SaslBroker, tmp_path: Path) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    admin_module = pytest.importorskip("confluent_kafka.admin")
    dave = _confluent(sasl_broker, "SASL_PLAINTEXT", "SCRAM-SHA-512", "dave", "dave-secret")
    errors: list[object] = []
    refused = admin_module.AdminClient({**dave, "error_cb": errors.append})
    with pytest.raises(confluent_kafka.KafkaException):
        refused.list_topics(timeout=3)
    admin = admin_module.AdminClient({"bootstrap.servers": sasl_broker.process.bootstrap})
    upsert = admin_module.UserScramCredentialUpsertion(
        "dave",
        admin_module.ScramCredentialInfo(admin_module.ScramMechanism.SCRAM_SHA_512, 4096),
        b"dave-secret",
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(TIMEOUT)
    assert admin_module.AdminClient(dave).list_topics(timeout=TIMEOUT).brokers


def test_cli_adds_two_mechanisms_and_deletes_one(sasl_broker: SaslBroker, tmp_path: Path) -> None:
    admin = _client_properties(tmp_path, sasl_broker, "SASL_SSL", "PLAIN", "admin", "admin-secret")
    common = ["configs", "--bootstrap-server", sasl_broker.bootstrap("SASL_SSL"), "--command-config", admin]
    user = ["--entity-type", "users", "--entity-name", "frank"]
    ok(
        *common, "--alter", *user,
        "--add-config", "SCRAM-SHA-256=[iterations=4096,password=f-pw],SCRAM-SHA-512=[password=f-pw]",
    )  # fmt: skip
    assert ok(*common, "--describe", *user) == (
        "SCRAM credential configs for user-principal 'frank' are "
        "SCRAM-SHA-256=iterations=4096, SCRAM-SHA-512=iterations=4096\n"
    )
    ok(*common, "--alter", *user, "--delete-config", "SCRAM-SHA-512")
    assert ok(*common, "--describe", *user).endswith("are SCRAM-SHA-256=iterations=4096\n")
    from compat_tests.test_cli import brook

    refused = brook(*common, "--alter", *user, "--add-config", "SCRAM-SHA-256=[iterations=100,password=f-pw]")
    assert refused.returncode != 0 and "Iterations 100 is less than the minimum 4096" in refused.stderr
    assert "f-pw" not in refused.stderr
