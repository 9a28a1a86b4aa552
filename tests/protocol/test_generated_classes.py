"""The generated message classes are plain slotted classes (cheap to create at import) that
behave as the dataclasses they replaced: constructor, defaults, equality, repr and
``dataclasses.fields`` / ``replace`` / ``asdict``."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol.messages
from protocol.message import Struct
from protocol.messages.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    LeaderIdAndEpoch,
    PartitionData,
)
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.metadata_request import MetadataRequest

MODULES = sorted(m.name for m in pkgutil.iter_modules(protocol.messages.__path__) if m.name != "_index")


def classes() -> list[type[Struct]]:
    found: list[type[Struct]] = []
    for name in MODULES:
        module = importlib.import_module(f"protocol.messages.{name}")
        found.extend(getattr(module, cls) for cls in module.__all__)
    return found


def test_no_generated_class_is_a_dataclass_or_has_a_dict() -> None:
    for cls in classes():
        assert "__dataclass_params__" not in cls.__dict__, cls
        assert not hasattr(cls(), "__dict__"), cls  # slotted all the way up


def test_defaults_and_keywords() -> None:
    request = HeartbeatRequest(group_id="g", member_id="m")
    assert (request.group_id, request.generation_id, request.member_id) == ("g", 0, "m")
    assert request.group_instance_id is None
    assert FetchResponse().responses == []
    assert PartitionData().current_leader == LeaderIdAndEpoch()


def test_mutable_defaults_are_not_shared() -> None:
    first, second = FetchResponse(), FetchResponse()
    first.responses.append(FetchableTopicResponse(topic="t"))
    assert second.responses == []
    a, b = PartitionData(), PartitionData()
    a.current_leader.leader_id = 7
    assert b.current_leader.leader_id == -1


def test_none_stays_none_where_given() -> None:
    # An explicit value is kept even where the default is built per instance.
    assert MetadataRequest(topics=None).topics is None
    assert FetchResponse(responses=None).responses is None  # type: ignore[arg-type]


def test_attributes_are_closed() -> None:
    with pytest.raises(AttributeError):
        HeartbeatRequest().not_a_field = 1  # type: ignore[attr-defined]


def test_equality_repr_and_hash() -> None:
    a = HeartbeatRequest("g", 1, "m", None)
    assert a == HeartbeatRequest("g", 1, "m", None)
    assert a != HeartbeatRequest("g", 2, "m", None)
    assert a != ("g", 1, "m", None)
    assert repr(a) == "HeartbeatRequest(group_id='g', generation_id=1, member_id='m', group_instance_id=None)"
    with pytest.raises(TypeError):
        hash(a)  # mutable, as a dataclass with eq and without frozen


def test_dataclasses_functions_work() -> None:
    names = [f.name for f in dataclasses.fields(HeartbeatRequest)]
    assert names == ["group_id", "generation_id", "member_id", "group_instance_id"]
    assert dataclasses.is_dataclass(HeartbeatRequest())
    changed = dataclasses.replace(HeartbeatRequest("g"), generation_id=5)
    assert changed == HeartbeatRequest("g", 5)
    response = FetchResponse(responses=[FetchableTopicResponse(topic="t", topic_id=uuid.UUID(int=1))])
    as_dict = dataclasses.asdict(response)
    assert as_dict["responses"][0]["topic"] == "t"
    assert as_dict["responses"][0]["topic_id"] == uuid.UUID(int=1)
    default_factories = {f.name: f.default_factory for f in dataclasses.fields(PartitionData)}
    assert default_factories["aborted_transactions"] is not dataclasses.MISSING


def test_every_class_has_fields_matching_its_slots() -> None:
    for cls in classes():
        assert tuple(f.name for f in dataclasses.fields(cls)) == cls.__slots__, cls


@given(st.text(), st.integers(-(2**31), 2**31 - 1), st.text(), st.none() | st.text())
def test_equality_is_fieldwise(group: str, generation: int, member: str, instance: str | None) -> None:
    a = HeartbeatRequest(group, generation, member, instance)
    b = HeartbeatRequest(
        group_id=group, generation_id=generation, member_id=member, group_instance_id=instance
    )
    assert a == b
    assert (a == HeartbeatRequest(group + "x", generation, member, instance)) is False
    assert HeartbeatRequest.decode(a.encode(3), 3) == a
