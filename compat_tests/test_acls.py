"""ACLs against a broker process with stock clients, principals told apart by TLS client
certificates (``ssl.principal.mapping.rules`` takes the CN): ``User:alice`` (the client
certificate), ``User:localhost`` (the server certificate used as a client one: the super user
that manages the ACLs) and ``User:ANONYMOUS`` on the PLAINTEXT listener.

The ACLs (made through confluent-kafka's AdminClient in the fixture):

- ``acl-open-`` PREFIXED topics: alice may READ and WRITE;
- ``acl-open-secret`` LITERAL: alice is DENIED READ (deny wins over the prefix);
- ``alice-`` PREFIXED groups: alice may READ;
- nothing for ANONYMOUS, and ``allow.everyone.if.no.acl.found`` is false: it may do nothing.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compat_tests.clients.roundtrips import aiokafka_consume
from compat_tests.harness import BrokerProcess, free_port
from tests.security.certs import Identity, Pki, make_pki, ssl_listener_settings

TIMEOUT = 30.0
OPEN = "acl-open-"
SECRET = "acl-open-secret"
MESSAGES = [f"acl-{i}".encode() for i in range(20)]

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import (  # noqa: E402
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)


@dataclass(frozen=True)
class AclBroker:
    process: BrokerProcess
    ssl_bootstrap: str
    pki: Pki

    @property
    def plain_bootstrap(self) -> str:
        return self.process.bootstrap

    def confluent(self, identity: Identity | None) -> dict[str, object]:
        """Settings for confluent-kafka: over SSL as ``identity``, or PLAINTEXT (ANONYMOUS)."""
        if identity is None:
            return {"bootstrap.servers": self.plain_bootstrap}
        return {
            "bootstrap.servers": self.ssl_bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.pki.ca),
            "ssl.certificate.location": str(identity.cert),
            "ssl.key.location": str(identity.key),
        }


def _binding(
    resource: Any, name: str, pattern: Any, principal: str, op: Any, permission: Any = AclPermissionType.ALLOW
) -> AclBinding:
    return AclBinding(resource, name, pattern, principal, "*", op, permission)


ALL_BINDINGS = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclBroker]:
    tmp = Path(tmp_path_factory.mktemp("acls"))
    pki = make_pki(tmp / "pki")
    process = BrokerProcess(tmp / "data")
    ssl_port = free_port()
    process.overrides = {
        **ssl_listener_settings(pki, client_auth="required"),
        "listeners": f"PLAINTEXT://127.0.0.1:{process.port},SSL://127.0.0.1:{ssl_port}",
        "security.inter.broker.protocol": "PLAINTEXT",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/,DEFAULT",
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:localhost",
        "offsets.topic.replication.factor": "1",
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
    }
    process.start()
    broker = AclBroker(process, f"127.0.0.1:{ssl_port}", pki)
    admin = AdminClient(broker.confluent(pki.server))
    bindings = [
        _binding(ResourceType.TOPIC, OPEN, ResourcePatternType.PREFIXED, "User:alice", AclOperation.READ),
        _binding(ResourceType.TOPIC, OPEN, ResourcePatternType.PREFIXED, "User:alice", AclOperation.WRITE),
        _binding(
            ResourceType.TOPIC,
            SECRET,
            ResourcePatternType.LITERAL,
            "User:alice",
            AclOperation.READ,
            AclPermissionType.DENY,
        ),
        _binding(ResourceType.GROUP, "alice-", ResourcePatternType.PREFIXED, "User:alice", AclOperation.READ),
    ]
    for future in admin.create_acls(bindings).values():
        assert future.result(TIMEOUT) is None
    created = admin.create_topics([NewTopic(SECRET, 1, 1)] + [NewTopic(f"{OPEN}{c}", 1, 1) for c in "abc"])
    for future in created.values():
        assert future.result(TIMEOUT) is None
    yield broker
    assert process.alive(), process.log_tail()
    process.stop()


def _topic() -> str:
    return f"{OPEN}{uuid.uuid4().hex[:8]}"


def _create_topic(broker: AclBroker, name: str) -> None:
    admin = AdminClient(broker.confluent(broker.pki.server))
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(TIMEOUT)


# -- the ACL apis --------------------------------------------------------------------------------------


def test_confluent_admin_creates_describes_and_deletes_acls(acl_broker: AclBroker) -> None:
    admin = AdminClient(acl_broker.confluent(acl_broker.pki.server))
    extra = _binding(
        ResourceType.GROUP, "extra-group", ResourcePatternType.LITERAL, "User:bob", AclOperation.DELETE
    )
    assert admin.create_acls([extra])[extra].result(TIMEOUT) is None
    described = admin.describe_acls(ALL_BINDINGS).result(TIMEOUT)
    assert extra in described
    assert len(described) == 5
    match = AclBindingFilter(
        ResourceType.TOPIC,
        SECRET,
        ResourcePatternType.MATCH,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    # MATCH: the literal on the name and the prefix that starts it.
    assert {(b.name, b.resource_pattern_type) for b in admin.describe_acls(match).result(TIMEOUT)} == {
        (SECRET, ResourcePatternType.LITERAL),
        (OPEN, ResourcePatternType.PREFIXED),
    }
    delete = AclBindingFilter(
        ResourceType.GROUP,
        "extra-group",
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert admin.delete_acls([delete])[delete].result(TIMEOUT) == [extra]
    assert extra not in admin.describe_acls(ALL_BINDINGS).result(TIMEOUT)


def test_acl_apis_need_cluster_rights(acl_broker: AclBroker) -> None:
    for identity in (None, acl_broker.pki.client):  # ANONYMOUS, then alice
        admin = AdminClient(acl_broker.confluent(identity))
        # librdkafka turns DescribeAcls' CLUSTER_AUTHORIZATION_FAILED into an empty list: nothing leaks.
        assert admin.describe_acls(ALL_BINDINGS).result(TIMEOUT) == []
        binding = _binding(
            ResourceType.TOPIC, "x", ResourcePatternType.LITERAL, "User:alice", AclOperation.ALL
        )
        with pytest.raises(confluent_kafka.KafkaException) as created:
            admin.create_acls([binding])[binding].result(TIMEOUT)
        assert created.value.args[0].code() == confluent_kafka.KafkaError.CLUSTER_AUTHORIZATION_FAILED
        with pytest.raises(confluent_kafka.KafkaException) as deleted:
            admin.delete_acls([ALL_BINDINGS])[ALL_BINDINGS].result(TIMEOUT)
        assert deleted.value.args[0].code() == confluent_kafka.KafkaError.CLUSTER_AUTHORIZATION_FAILED
    kafka = pytest.importorskip("kafka")
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType as Pattern
    from kafka.admin import ResourceType as KResourceType
    from kafka.errors import ClusterAuthorizationFailedError

    anonymous = kafka.KafkaAdminClient(bootstrap_servers=acl_broker.plain_bootstrap)
    try:
        everything = ACLFilter(
            None,
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(KResourceType.ANY, None, Pattern.ANY),
        )
        with pytest.raises(ClusterAuthorizationFailedError):
            anonymous.describe_acls(everything)
    finally:
        anonymous.close()


CLUSTER_AUTHORIZATION_FAILED = 31


def test_quota_and_scram_apis_need_cluster_rights(acl_broker: AclBroker) -> None:
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    from compat_tests.clients.raw import read_frame
    from compat_tests.test_cli import brook
    from protocol import api as papi
    from protocol.messages.describe_user_scram_credentials_request import (
        DescribeUserScramCredentialsRequest,
        UserName,
    )

    # librdkafka 2.16 crashes on a refused DescribeUserScramCredentials (a top-level error, as Kafka
    # answers it), so that refusal is read with a raw request.
    request = DescribeUserScramCredentialsRequest(users=[UserName("alice")])
    with socket.create_connection(("127.0.0.1", acl_broker.process.port), timeout=TIMEOUT) as sock:
        sock.sendall(papi.encode_request(request, 0, 1))
        _, answer = papi.decode_response(read_frame(sock), request.API_KEY, 0)
    assert answer.error_code == CLUSTER_AUTHORIZATION_FAILED
    assert [r.error_code for r in answer.results] == [CLUSTER_AUTHORIZATION_FAILED]
    anonymous = AdminClient(acl_broker.confluent(None))
    upsert = UserScramCredentialUpsertion(
        "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"secret", b"salt"
    )
    with pytest.raises(confluent_kafka.KafkaException) as altered:
        anonymous.alter_user_scram_credentials([upsert])["alice"].result(TIMEOUT)
    assert altered.value.args[0].code() == confluent_kafka.KafkaError.CLUSTER_AUTHORIZATION_FAILED
    for action in (["--describe"], ["--alter", "--add-config", "producer_byte_rate=1024"]):
        refused = brook(
            "configs", "--bootstrap-server", acl_broker.plain_bootstrap, *action, "--entity-type", "clients",
            "--entity-name", "app",
        )  # fmt: skip
        assert refused.returncode != 0
        assert "authoriz" in refused.stderr.lower(), refused.stderr
    # The super user (the broker certificate's principal) may.
    allowed = AdminClient(acl_broker.confluent(acl_broker.pki.server))
    allowed.alter_user_scram_credentials([upsert])["alice"].result(TIMEOUT)
    info = allowed.describe_user_scram_credentials(["alice"])["alice"].result(TIMEOUT)
    assert [c.iterations for c in info.scram_credential_infos] == [4096]


def test_kafka_python_admin(acl_broker: AclBroker) -> None:
    kafka = pytest.importorskip("kafka")
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ResourcePattern,
        ResourcePatternFilter,
    )
    from kafka.admin import ACLResourcePatternType as Pattern
    from kafka.admin import ResourceType as KResourceType

    pki = acl_broker.pki
    admin = kafka.KafkaAdminClient(
        bootstrap_servers=acl_broker.ssl_bootstrap,
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.server.cert),
        ssl_keyfile=str(pki.server.key),
    )
    try:
        acl = ACL(
            "User:carol",
            "*",
            ACLOperation.WRITE,
            ACLPermissionType.ALLOW,
            ResourcePattern(KResourceType.TOPIC, "carol-", Pattern.PREFIXED),
        )
        result = admin.create_acls([acl])
        assert result["failed"] == [] and len(result["succeeded"]) == 1
        filter_ = ACLFilter(
            "User:carol",
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(KResourceType.ANY, None, Pattern.ANY),
        )
        found, error = admin.describe_acls(filter_)
        assert error.errno == 0
        assert [(a.principal, a.resource_pattern.resource_name) for a in found] == [("User:carol", "carol-")]
        deleted = admin.delete_acls([filter_])
        assert len(deleted[0][1]) == 1
        assert admin.describe_acls(filter_)[0] == []
    finally:
        admin.close()


# -- producing and consuming ---------------------------------------------------------------------------


def _confluent_produce(settings: dict[str, object], topic: str) -> list[Any]:
    errors: list[Any] = []
    producer = confluent_kafka.Producer({**settings, "linger.ms": 5, "message.timeout.ms": 10_000})
    for value in MESSAGES:
        producer.produce(topic, value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(TIMEOUT) == 0
    return errors


def _confluent_consume(settings: dict[str, object], topic: str, group: str) -> tuple[list[bytes], list[Any]]:
    consumer = confluent_kafka.Consumer({**settings, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    errors: list[Any] = []
    try:
        misses = 0
        while len(got) < len(MESSAGES) and misses < 40 and not errors:
            message = consumer.poll(0.5)
            misses = misses + 1 if message is None else 0
            if message is None:
                continue
            if message.error() is not None:
                errors.append(message.error())
            else:
                got.append(message.value())
    finally:
        consumer.close()
    return got, errors


def test_confluent_kafka(acl_broker: AclBroker) -> None:
    pki = acl_broker.pki
    alice = acl_broker.confluent(pki.client)
    topic = _topic()
    _create_topic(acl_broker, topic)
    assert _confluent_produce(alice, topic) == [None] * len(MESSAGES)
    got, errors = _confluent_consume(alice, topic, "alice-group")
    assert errors == [] and sorted(got) == sorted(MESSAGES)
    # ANONYMOUS may not write
    denied = _confluent_produce(acl_broker.confluent(None), topic)
    assert {e.code() for e in denied} == {confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED}
    # DENY beats the prefix: alice may not read the secret topic
    _, errors = _confluent_consume(alice, SECRET, "alice-secret")
    assert errors and errors[0].code() == confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED
    # a group alice has no READ on
    _, errors = _confluent_consume(alice, topic, "someone-elses-group")
    assert errors and errors[0].code() == confluent_kafka.KafkaError.GROUP_AUTHORIZATION_FAILED


def test_metadata_hides_what_cannot_be_described(acl_broker: AclBroker) -> None:
    alice = AdminClient(acl_broker.confluent(acl_broker.pki.client)).list_topics(timeout=TIMEOUT)
    names = set(alice.topics)
    assert {f"{OPEN}a", f"{OPEN}b", f"{OPEN}c", SECRET} <= names  # DESCRIBE implied by WRITE
    assert all(name.startswith(OPEN) for name in names)
    anonymous = AdminClient(acl_broker.confluent(None)).list_topics(timeout=TIMEOUT)
    assert anonymous.topics == {}
    named = AdminClient(acl_broker.confluent(None)).list_topics(f"{OPEN}a", timeout=TIMEOUT)
    assert named.topics[f"{OPEN}a"].error.code() == confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_authorized_operations(acl_broker: AclBroker) -> None:
    from confluent_kafka import TopicCollection

    alice = AdminClient(acl_broker.confluent(acl_broker.pki.client))
    topic = f"{OPEN}a"
    described = alice.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic]
    assert set(described.result(TIMEOUT).authorized_operations) == {
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.DESCRIBE,
    }
    # DescribeCluster needs nothing; without DESCRIBE on the cluster the operations are none.
    cluster = alice.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    assert not cluster.authorized_operations
    admin = AdminClient(acl_broker.confluent(acl_broker.pki.server))  # the super user: everything
    cluster = admin.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    assert set(cluster.authorized_operations) == {
        AclOperation.CREATE,
        AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
    }


def test_kafka_python(acl_broker: AclBroker) -> None:
    kafka = pytest.importorskip("kafka")
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    pki = acl_broker.pki
    alice = {
        "bootstrap_servers": acl_broker.ssl_bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": str(pki.ca),
        "ssl_certfile": str(pki.client.cert),
        "ssl_keyfile": str(pki.client.key),
    }
    topic = _topic()
    _create_topic(acl_broker, topic)
    producer = kafka.KafkaProducer(**alice)
    for value in MESSAGES:
        producer.send(topic, value).get(TIMEOUT)
    producer.close(TIMEOUT)
    consumer = kafka.KafkaConsumer(
        topic, group_id="alice-kp", auto_offset_reset="earliest", consumer_timeout_ms=15_000, **alice
    )
    try:
        got = [record.value for _, record in zip(range(len(MESSAGES)), consumer, strict=False)]
    finally:
        consumer.close()
    assert sorted(got) == sorted(MESSAGES)

    anonymous = kafka.KafkaProducer(bootstrap_servers=acl_broker.plain_bootstrap, max_block_ms=10_000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            anonymous.send(topic, b"nope").get(TIMEOUT)
    finally:
        anonymous.close(TIMEOUT)

    denied_group = kafka.KafkaConsumer(topic, group_id="not-alices", auto_offset_reset="earliest", **alice)
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            for _ in range(40):
                denied_group.poll(timeout_ms=500)
    finally:
        denied_group.close()


def test_aiokafka(acl_broker: AclBroker) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
    from aiokafka.helpers import create_ssl_context

    pki = acl_broker.pki
    context = create_ssl_context(
        cafile=str(pki.ca), certfile=str(pki.client.cert), keyfile=str(pki.client.key)
    )
    alice = {
        "bootstrap_servers": acl_broker.ssl_bootstrap,
        "security_protocol": "SSL",
        "ssl_context": context,
    }
    topic = _topic()
    _create_topic(acl_broker, topic)

    async def scenario() -> list[bytes]:
        producer = aiokafka.AIOKafkaProducer(**alice)
        await producer.start()
        try:
            for value in MESSAGES:
                await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()
        anonymous = aiokafka.AIOKafkaProducer(
            bootstrap_servers=acl_broker.plain_bootstrap, request_timeout_ms=10_000
        )
        await anonymous.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                async with asyncio.timeout(TIMEOUT):
                    await anonymous.send_and_wait(topic, b"nope")
        finally:
            await anonymous.stop()
        consumer = aiokafka.AIOKafkaConsumer(
            topic, group_id="alice-aio", auto_offset_reset="earliest", **alice
        )
        got = await aiokafka_consume(consumer, len(MESSAGES), TIMEOUT)
        refused = aiokafka.AIOKafkaConsumer(
            topic, group_id="not-alices-aio", auto_offset_reset="earliest", **alice
        )
        try:
            with pytest.raises(GroupAuthorizationFailedError):  # raised by start() or the first fetch
                async with asyncio.timeout(TIMEOUT):
                    await refused.start()
                    await refused.getone()
        finally:
            await refused.stop()
        return got

    assert sorted(asyncio.run(scenario())) == sorted(MESSAGES)


# -- persistence ----------------------------------------------------------------------------------------


def test_acls_survive_a_restart(tmp_path: Path) -> None:
    process = BrokerProcess(
        tmp_path / "data",
        {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
        },
    )
    process.start()
    try:
        admin = AdminClient({"bootstrap.servers": process.bootstrap})
        binding = _binding(
            ResourceType.TOPIC, "kept", ResourcePatternType.PREFIXED, "User:alice", AclOperation.READ
        )
        assert admin.create_acls([binding])[binding].result(TIMEOUT) is None
        process.restart(hard=True)  # answered means durable: a kill -9 keeps it
        admin = AdminClient({"bootstrap.servers": process.bootstrap})
        assert admin.describe_acls(ALL_BINDINGS).result(TIMEOUT) == [binding]
        assert (tmp_path / "data" / "brook-acls.json").exists()
    finally:
        process.stop()


def test_an_unknown_authorizer_is_refused_at_start(tmp_path: Path) -> None:
    process = BrokerProcess(tmp_path / "data", {"authorizer.class.name": "com.example.MyAuthorizer"})
    with pytest.raises(RuntimeError, match=r"authorizer\.class\.name"):
        process.start()


# -- brook acls (kafka-acls.sh) ---------------------------------------------------------------------


def test_brook_acls_adds_lists_and_removes(tmp_path: Path) -> None:
    from compat_tests.test_cli import brook

    process = BrokerProcess(
        tmp_path / "data",
        {"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer", "super.users": "User:ANONYMOUS"},
    )
    process.start()
    try:
        server = ("--bootstrap-server", process.bootstrap)
        added = brook(
            "acls",
            *server,
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "t1",
        )
        assert added.returncode == 0, added.stderr
        assert added.stdout == (
            "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t1, patternType=LITERAL)`: \n"
            " \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW) \n\n"
        )
        prefixed = brook(
            "acls",
            *server,
            "--add",
            "--deny-principal",
            "User:bob",
            "--deny-host",
            "10.0.0.1",
            "--topic",
            "pre-",
            "--resource-pattern-type",
            "prefixed",
        )
        assert prefixed.returncode == 0, prefixed.stderr
        consumer = brook(
            "acls",
            *server,
            "--add",
            "--allow-principal",
            "User:carol",
            "--consumer",
            "--topic",
            "c",
            "--group",
            "g",
        )
        assert consumer.returncode == 0, consumer.stderr
        listed = brook("acls", *server, "--list", "--topic", "t1")
        assert listed.stdout == (
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t1, patternType=LITERAL)`: "
            "\n \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW) \n\n"
        )
        everything = brook("acls", *server, "--list").stdout
        assert (
            "name=pre-, patternType=PREFIXED" in everything and "host=10.0.0.1, operation=ALL" in everything
        )
        assert "(principal=User:carol, host=*, operation=READ, permissionType=ALLOW)" in everything
        assert "resourceType=GROUP, name=g" in everything

        declined = brook("acls", *server, "--remove", "--topic", "t1", stdin=b"n\n")
        assert declined.stdout.startswith("Are you sure you want to delete all ACLs for resource filter `")
        assert "name=t1" in brook("acls", *server, "--list").stdout
        removed = brook("acls", *server, "--remove", "--topic", "t1", "--force")
        assert removed.returncode == 0 and removed.stdout == ""
        assert "name=t1" not in brook("acls", *server, "--list").stdout

        bad = brook(
            "acls", *server, "--add", "--allow-principal", "User:x", "--operation", "Write", "--group", "g"
        )
        assert bad.returncode == 1
        assert "ResourceType GROUP only supports operations" in bad.stderr
        nobody = brook("acls", *server, "--add", "--topic", "t")
        assert nobody.returncode == 1 and "--allow-principal, --deny-principal" in nobody.stderr
    finally:
        process.stop()
