"""Every message type, in every valid version, survives encode -> decode -> encode."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codegen.model import MessageDef
from tests.protocol.schema_strategies import cases, message_class, message_strategy

CASES = cases()


@pytest.mark.parametrize(("message", "version"), CASES, ids=[f"{m.name}-v{v}" for m, v in CASES])
# 8 examples here; test_fuzz.py round-trips 3 more values of every request version and 1 more of
# every other message version before mutating them.
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_round_trip(message: MessageDef, version: int, data: Any) -> None:
    value = data.draw(message_strategy(message, version))
    cls = message_class(message)
    encoded = value.encode(version)
    decoded = cls.decode(encoded, version)
    assert decoded == value
    assert decoded.encode(version) == encoded


def test_every_version_of_every_schema_is_covered() -> None:
    names = {m.name for m, _ in CASES}
    assert {"ProduceRequest", "FetchResponse", "RequestHeader", "OffsetCommitValue"} <= names
    assert len(CASES) >= 700


def test_defaults_encode_in_every_version() -> None:
    """A message built with no arguments is valid in every version (Kafka's defaults)."""
    for message, version in CASES:
        cls = message_class(message)
        encoded = cls().encode(version)
        assert cls.decode(encoded, version).encode(version) == encoded
