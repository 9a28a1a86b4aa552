"""Byte-for-byte cross-check against kio, an independent implementation of the same schemas.

For every message and version that kio covers: kio decodes Brook's bytes completely and
re-encodes them to the identical bytes, and Brook decodes kio's encoding back to the value it
started from. (kio's schemas come from a newer Kafka; versions both know must agree.)
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kio.index import KioIndexError, load_entity_schema, load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from protocol.codegen.emit import module_name
from protocol.codegen.model import MessageDef
from protocol.messages._index import APIS
from tests.protocol.schema_strategies import cases, message_class, message_strategy


def kio_type(message: MessageDef, version: int) -> Any:
    try:
        if message.kind == "request" and message.api_key is not None:
            return load_request_schema(message.api_key, version)
        if message.kind == "response" and message.api_key is not None:
            return load_response_schema(message.api_key, version)
        if message.kind == "header":
            return load_entity_schema(module_name(message), version, EntityType.header)
        return load_entity_schema(module_name(message), version, EntityType.data)
    except (KioIndexError, KeyError, ImportError, AttributeError):
        return None


def comparable(message: MessageDef, version: int) -> bool:
    """Unstable latest versions (e.g. the share-group apis in 3.9) changed after 3.9, so kio's
    newer schemas of them are a different message; every stable version must agree. Kafka marks
    only the request schema ``latestVersionUnstable``; the response of the api shares the flag."""
    unstable = message.latest_unstable
    if message.api_key is not None and message.api_key in APIS:
        unstable = APIS[message.api_key].latest_unstable
    return not (unstable and version == message.valid.hi)


COVERED = [(m, v, t) for m, v in cases() if comparable(m, v) and (t := kio_type(m, v)) is not None]


def test_kio_covers_the_main_apis() -> None:
    names = {(m.name, v) for m, v, _ in COVERED}
    assert ("ProduceRequest", 9) in names
    assert ("MetadataResponse", 12) in names
    assert ("FetchResponse", 16) in names
    assert len(COVERED) > 500


@pytest.mark.parametrize(
    ("message", "version", "kio_cls"), COVERED, ids=[f"{m.name}-v{v}" for m, v, _ in COVERED]
)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None,
          phases=[Phase.explicit, Phase.generate])
@given(data=st.data())
def test_same_bytes_as_kio(message: MessageDef, version: int, kio_cls: Any, data: Any) -> None:
    value = data.draw(message_strategy(message, version, tame=True))
    ours = value.encode(version)
    kio_value, size = entity_reader(kio_cls)(ours, 0)
    assert size == len(ours), "kio did not consume Brook's whole encoding"
    out = io.BytesIO()
    entity_writer(kio_cls)(out, kio_value)
    theirs = out.getvalue()
    assert theirs == ours
    assert message_class(message).decode(theirs, version) == value
