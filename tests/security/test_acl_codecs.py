"""The JSON of Kafka's ACL znodes and change events, and Brook's standalone ACL file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.security.acl import (
    AccessControlEntry,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
)
from broker.security.acl import ResourceType as R
from broker.security.acl_file import decode_document, encode_document
from broker.security.acl_json import (
    AclJsonError,
    decode_change,
    decode_entries,
    encode_entries,
    encode_extended_change,
    encode_literal_change,
)
from broker.security.zk_acls import resource_path

ENTRIES = st.frozensets(
    st.builds(
        AccessControlEntry,
        st.sampled_from(["User:alice", "User:*", "User:CN=x,OU=y"]),
        st.sampled_from(["*", "10.0.0.1"]),
        st.sampled_from([o for o in AclOperation if o not in (AclOperation.UNKNOWN, AclOperation.ANY)]),
        st.sampled_from([AclPermissionType.ALLOW, AclPermissionType.DENY]),
    ),
    max_size=6,
)


def test_a_resource_znode_reads_as_kafka_writes_it() -> None:
    entries = frozenset({AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW)})
    # Jackson over AclEntry.toJsonCompatibleMap's HashMaps: keys in Java hash order (buckets of
    # 16: acls 4, version 13; principal 0, permissionType 1, host 8, operation 13).
    assert encode_entries(entries) == (
        b'{"acls":[{"principal":"User:alice","permissionType":"Allow","host":"*","operation":"Read"}],'
        b'"version":1}'
    )
    kafka_written = (
        b'{"version":1,"acls":[{"host":"h1","permissionType":"Deny","operation":"DescribeConfigs",'
        b'"principal":"User:bob"},{"principal":"User:*","permissionType":"Allow","operation":"ClusterAction","host":"*"}]}'
    )
    assert decode_entries(kafka_written) == {
        AccessControlEntry("User:bob", "h1", AclOperation.DESCRIBE_CONFIGS, AclPermissionType.DENY),
        AccessControlEntry("User:*", "*", AclOperation.CLUSTER_ACTION, AclPermissionType.ALLOW),
    }


@given(ENTRIES)
def test_entries_round_trip(entries: frozenset[AccessControlEntry]) -> None:
    assert decode_entries(encode_entries(entries)) == entries


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"version":2,"acls":[]}',
        b'{"version":1}',
        b"not json",
        b'{"version":1,"acls":[{"host":"*"}]}',
    ],
)
def test_bad_znodes_are_errors(data: bytes) -> None:
    with pytest.raises(AclJsonError):
        decode_entries(data)


def test_paths_and_change_events() -> None:
    literal = ResourcePattern(R.TRANSACTIONAL_ID, "tx-1", PatternType.LITERAL)
    prefixed = ResourcePattern(R.TOPIC, "orders-", PatternType.PREFIXED)
    assert resource_path(literal) == "/kafka-acl/TransactionalId/tx-1"
    assert resource_path(prefixed) == "/kafka-acl-extended/prefixed/Topic/orders-"
    assert encode_literal_change(literal) == b"TRANSACTIONAL_ID:tx-1"
    assert json.loads(encode_extended_change(prefixed)) == {
        "version": 1,
        "resourceType": "TOPIC",
        "name": "orders-",
        "patternType": "PREFIXED",
    }
    assert decode_change(b"TOPIC:a:b", extended=False) == ResourcePattern(R.TOPIC, "a:b", PatternType.LITERAL)
    assert decode_change(encode_extended_change(prefixed), extended=True) == prefixed
    for bad in (b"nocolon", b"NOPE:x"):
        with pytest.raises(AclJsonError):
            decode_change(bad, extended=False)
    with pytest.raises(AclJsonError):
        decode_change(b'{"version":1}', extended=True)


@given(
    st.dictionaries(
        st.builds(
            ResourcePattern,
            st.sampled_from([R.TOPIC, R.GROUP, R.CLUSTER, R.TRANSACTIONAL_ID, R.USER, R.DELEGATION_TOKEN]),
            st.text(min_size=1, max_size=8),
            st.sampled_from([PatternType.LITERAL, PatternType.PREFIXED]),
        ),
        ENTRIES.filter(bool),
        max_size=5,
    )
)
def test_the_standalone_file_round_trips(acls: dict[ResourcePattern, frozenset[AccessControlEntry]]) -> None:
    assert decode_document(encode_document(acls)) == acls


def test_a_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AclJsonError):
        decode_document(b'{"version":1,"resources":[{"resourceType":"Nope"}]}')
