"""Which ``__consumer_offsets`` partition holds a group: Kafka's
``Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions``.

``String.hashCode`` is computed over UTF-16 code units (a character outside the Basic
Multilingual Plane counts as its two surrogates) with 32-bit signed overflow, and Kafka's
``Utils.abs`` maps ``Integer.MIN_VALUE`` to 0 rather than leaving it negative.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_INT_MIN = -(2**31)


def java_string_hash(value: str) -> int:
    """Java's ``String.hashCode()``: ``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units,
    as a signed 32-bit integer."""
    data = value.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & _MASK
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_abs(n: int) -> int:
    """Kafka's ``Utils.abs``: the absolute value, except that ``Integer.MIN_VALUE`` gives 0."""
    return 0 if n == _INT_MIN else abs(n)


def partition_for(group_id: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition of ``group_id`` (its coordinator's partition)."""
    return kafka_abs(java_string_hash(group_id)) % partitions
