"""The ZooKeeper mode's conversions between Kafka's znode JSON and the controller's types."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from broker.cluster.controller_driver import broker_info, to_controller_state, to_znode_state, topic_snapshot
from broker.cluster.zk import data
from broker.cluster.zk_mode import broker_registration
from broker.config import BrokerConfig

broker_ids = st.integers(min_value=0, max_value=2000)


@given(
    leader=st.integers(min_value=-1, max_value=2000),
    leader_epoch=st.integers(min_value=0, max_value=2**31 - 1),
    isr=st.lists(broker_ids, max_size=6, unique=True),
    controller_epoch=st.integers(min_value=0, max_value=2**31 - 1),
    recovery=st.sampled_from([0, 1]),
    zk_version=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_partition_states_survive_the_round_trip_through_znode_json(
    leader: int, leader_epoch: int, isr: list[int], controller_epoch: int, recovery: int, zk_version: int
) -> None:
    state = data.PartitionState(leader, leader_epoch, tuple(isr), controller_epoch, recovery, zk_version)
    controller_view = to_controller_state(state)
    assert controller_view.leader_and_isr.partition_epoch == zk_version
    assert to_znode_state(controller_view, zk_version) == state
    decoded = data.decode_partition_state(data.encode_partition_state(state), zk_version)
    assert to_controller_state(decoded) == controller_view


@given(
    partitions=st.dictionaries(
        st.integers(min_value=0, max_value=50),
        st.lists(broker_ids, min_size=1, max_size=4, unique=True),
        max_size=8,
    )
)
def test_topic_znodes_become_controller_assignments(partitions: dict[int, list[int]]) -> None:
    topic_id = uuid.uuid4()
    assignment = data.decode_topic("t", data.encode_topic(data.TopicAssignment(topic_id, partitions)))
    snapshot = topic_snapshot(assignment, topic_id)
    assert snapshot.topic_id == topic_id
    assert {p: list(a.replicas) for p, a in snapshot.partitions.items()} == partitions
    assert not any(a.is_being_reassigned for a in snapshot.partitions.values())


@given(port=st.integers(min_value=0, max_value=65535), bound=st.integers(min_value=1, max_value=65535))
def test_registration_advertises_the_bound_port_and_every_listener(port: int, bound: int) -> None:
    config = BrokerConfig(
        {
            "zookeeper.connect": "zk:2181",
            "broker.id": "3",
            "broker.rack": "r1",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},INTERNAL://127.0.0.1:{0 if port else 1}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
        }
    )
    registration = broker_registration(config, 3, {"PLAINTEXT": bound, "INTERNAL": bound})
    decoded = data.decode_broker(3, data.encode_broker(registration))
    info = broker_info(decoded, 77)
    assert (info.id, info.rack, info.epoch) == (3, "r1", 77)
    plain = info.endpoint("PLAINTEXT")
    internal = info.endpoint("INTERNAL")
    assert plain is not None and internal is not None
    assert plain.port == (port or bound) and plain.host == "127.0.0.1"
    assert internal.port == (bound if port else 1)  # its configured port 0 is replaced by the bound one
