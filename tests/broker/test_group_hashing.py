"""The group-to-partition mapping against values worked out by hand from Java's String.hashCode.

``h = s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units, wrapped to a signed 32-bit int;
Kafka's ``Utils.abs`` maps Integer.MIN_VALUE to 0; the partition is that modulo 50.
"""

from __future__ import annotations

import pytest

from broker.group.hashing import java_string_hash, kafka_abs, partition_for

CASES = [
    # (group id, String.hashCode, partition of 50) - each worked out below
    ("", 0, 0),
    ("a", 97, 47),  # 'a' = 97
    ("g1", 3242, 42),  # 103*31 + 49
    ("Aa", 2112, 12),  # 65*31 + 97, the classic collision with "BB"
    ("BB", 2112, 12),  # 66*31 + 66
    ("abc", 96354, 4),  # (97*31 + 98)*31 + 99
    ("hello", 99162322, 22),  # well-known Java value
    # 72*31^10 + ... wraps: Java prints -862545276 for "Hello World"
    ("Hello World", -862545276, 26),
    # The famous string whose hashCode is Integer.MIN_VALUE: Utils.abs gives 0, not a negative.
    ("polygenelubricants", -(2**31), 0),
    # Non-ASCII in the BMP: one UTF-16 unit per character.
    ("é", 233, 33),  # U+00E9
    ("日本", 835047, 47),  # U+65E5 = 26085, U+672C = 26412: 26085*31 + 26412
    ("grüppe", None, None),  # checked against the formula below
    # Outside the BMP: U+1F600 is the surrogate pair D83D DE00 (two code units):
    # 0xD83D*31 + 0xDE00 = 55357*31 + 56832
    ("😀", 1772899, 49),
]


@pytest.mark.parametrize(("group_id", "expected_hash", "expected_partition"), CASES)
def test_java_string_hash_and_partition(
    group_id: str, expected_hash: int | None, expected_partition: int | None
) -> None:
    if expected_hash is None:
        # The definition over UTF-16 code units, computed independently.
        units = [ord(c) for c in group_id]  # all BMP here
        h = 0
        for u in units:
            h = (h * 31 + u) % 2**32
        expected_hash = h - 2**32 if h >= 2**31 else h
        expected_partition = abs(expected_hash) % 50
    assert java_string_hash(group_id) == expected_hash
    assert partition_for(group_id, 50) == expected_partition


def test_kafka_abs() -> None:
    assert kafka_abs(-(2**31)) == 0
    assert kafka_abs(-5) == 5
    assert kafka_abs(7) == 7


def test_partition_count_is_respected() -> None:
    assert partition_for("hello", 7) == 99162322 % 7
    assert all(0 <= partition_for(f"group-{i}", 3) < 3 for i in range(100))
