"""Consumer groups with stock clients against a real broker: members split a topic, rebalance
when members come and go (closed or SIGKILLed), with each assignor the clients offer, and static
members come back without a rebalance. Members run in their own processes
(compat_tests/group_worker.py, compat_tests/node/group_member.js) so that they can be killed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from compat_tests.clients.admin import create_topic, unique_topic
from compat_tests.group_worker import Member, wait_for
from compat_tests.harness import BrokerProcess

PARTITIONS = 6
SESSION_MS = 6000
#: Joining, rebalancing and reading take well under this; the session timeout adds 6 s.
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> Iterator[str]:
    yield broker.bootstrap
    assert broker.alive(), f"the broker died during the tests:\n{broker.log_tail()}"


@pytest.fixture
def members() -> Iterator[list[Member]]:
    started: list[Member] = []
    yield started
    for member in started:
        member.stop()


def produce(bootstrap: str, topic: str, per_partition: int) -> set[tuple[int, int]]:
    """``per_partition`` records to every partition; returns their (partition, offset)."""
    from confluent_kafka import Producer

    acked: set[tuple[int, int]] = set()
    errors: list[str] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked.add((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition in range(PARTITIONS):
        for i in range(per_partition):
            producer.produce(topic, f"v{i}".encode(), partition=partition, on_delivery=delivered)
    assert producer.flush(30) == 0 and not errors, errors
    return acked


def start(
    members: list[Member], client: str, bootstrap: str, group: str, topic: str, **cfg: object
) -> Member:
    settings: dict[str, object] = {
        "bootstrap": bootstrap,
        "group": group,
        "topic": topic,
        "session_ms": SESSION_MS,
        "heartbeat_ms": 500,
        "client_id": f"{client}-{len(members)}",
        **cfg,
    }
    member = Member(client, **settings)
    members.append(member)
    return member


def balanced(group: list[Member], each: int) -> bool:
    """Every member owns ``each`` partitions, none twice, all of them covered."""
    owned = [m.assignment() for m in group]
    union = set().union(*owned)
    return all(len(o) == each for o in owned) and sum(map(len, owned)) == len(union) == PARTITIONS


def consumed(group: list[Member]) -> set[tuple[int, int]]:
    return set().union(*(m.records() for m in group))


def test_three_members_split_then_take_over_after_close_and_sigkill(
    bootstrap: str, members: list[Member]
) -> None:
    topic = create_topic(bootstrap, unique_topic("grp3"), PARTITIONS)
    group = f"three-{uuid.uuid4().hex[:6]}"
    trio = [start(members, "confluent", bootstrap, group, topic, commit="sync") for _ in range(3)]
    wait_for(lambda: balanced(trio, 2), TIMEOUT, "three members with two partitions each", trio)
    sent = produce(bootstrap, topic, 10)
    wait_for(lambda: consumed(trio) >= sent, TIMEOUT, "every record read once split", trio)

    # A member closes: it leaves the group, the other two take over its partitions.
    trio[0].close()
    pair = trio[1:]
    wait_for(lambda: balanced(pair, 3), TIMEOUT, "two members with three partitions each", pair)
    sent |= produce(bootstrap, topic, 10)
    wait_for(lambda: consumed(trio) >= sent, TIMEOUT, "records after the close read", pair)

    # A member is SIGKILLed: after its session timeout the last one owns everything.
    pair[0].kill()
    survivor = pair[1]
    wait_for(
        lambda: survivor.assignment() == set(range(PARTITIONS)),
        TIMEOUT + SESSION_MS / 1000,
        "the survivor to own all partitions",
        [survivor],
    )
    sent |= produce(bootstrap, topic, 10)
    wait_for(lambda: consumed(trio) >= sent, TIMEOUT, "records after the kill read", [survivor])
    # No loss: every acknowledged record was read by some member (at least once).
    assert consumed(trio) >= sent


ASSIGNORS = [
    ("confluent", "range"),
    ("confluent", "roundrobin"),
    ("confluent", "cooperative-sticky"),
    ("kafka-python", "range"),
    ("kafka-python", "roundrobin"),
    ("kafka-python", "sticky"),
    ("kafka-python", "cooperative-sticky"),
    ("aiokafka", "default"),
    ("kafkajs", "default"),
]


@pytest.mark.parametrize(("client", "assignor"), ASSIGNORS, ids=[f"{c}-{a}" for c, a in ASSIGNORS])
def test_assignor_splits_and_rebalances(
    bootstrap: str, members: list[Member], client: str, assignor: str
) -> None:
    topic = create_topic(bootstrap, unique_topic(f"asg-{client}"), PARTITIONS)
    group = f"{client}-{assignor}-{uuid.uuid4().hex[:6]}"
    sent = produce(bootstrap, topic, 5)
    first = start(members, client, bootstrap, group, topic, assignor=assignor, commit="sync")
    wait_for(
        lambda: first.assignment() == set(range(PARTITIONS)), TIMEOUT, "the first member to own all", [first]
    )
    before = list(first.rebalance_events())
    second = start(members, client, bootstrap, group, topic, assignor=assignor, commit="sync")
    pair = [first, second]
    wait_for(lambda: balanced(pair, 3), TIMEOUT, "two members with three partitions each", pair)
    wait_for(lambda: consumed(pair) >= sent, TIMEOUT, "every record read", pair)
    if assignor == "cooperative-sticky":
        # Incremental: the first member gives up only what moves to the second, never the rest.
        revoked = [e for e in first.rebalance_events()[len(before) :] if e["ev"] == "revoked"]
        moved = second.assignment()
        assert revoked and all(set(e["partitions"]) <= moved for e in revoked), first.rebalance_events()
    second.close()
    wait_for(
        lambda: first.assignment() == set(range(PARTITIONS)),
        TIMEOUT,
        "the first member to own all again",
        pair,
    )
    more = produce(bootstrap, topic, 2)
    wait_for(lambda: consumed(pair) >= sent | more, TIMEOUT, "records after the leave read", [first])


def test_static_member_restart_gets_its_partitions_back_without_rebalance(
    bootstrap: str, members: list[Member]
) -> None:
    topic = create_topic(bootstrap, unique_topic("static"), PARTITIONS)
    group = f"static-{uuid.uuid4().hex[:6]}"
    session = 10_000  # the restart below happens well within it
    a = start(members, "confluent", bootstrap, group, topic, instance_id="inst-a", session_ms=session)
    b = start(members, "confluent", bootstrap, group, topic, instance_id="inst-b", session_ms=session)
    wait_for(lambda: balanced([a, b], 3), TIMEOUT, "two static members with three partitions each", [a, b])
    owned_by_a = a.assignment()
    b_events = len(b.rebalance_events())
    a.kill()  # no LeaveGroup: a static member's place is kept for its session timeout
    again = start(members, "confluent", bootstrap, group, topic, instance_id="inst-a", session_ms=session)
    wait_for(
        lambda: bool(again.assignment()), TIMEOUT, "the restarted static member's assignment", [again, b]
    )
    assert again.assignment() == owned_by_a
    sent = produce(bootstrap, topic, 3)
    wait_for(lambda: consumed([again, b]) >= sent, TIMEOUT, "both members reading", [again, b])
    assert len(b.rebalance_events()) == b_events, b.rebalance_events()  # b never rebalanced
