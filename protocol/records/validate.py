"""Record scan of a v2 batch's records, what Kafka's ``LogValidator`` needs from them on append.

:func:`scan_records` walks the records of one batch (uncompressed bytes) the way Kafka's
``DefaultRecord.readFrom`` / ``readPartiallyFrom`` do, but skips key, value and header bytes
instead of copying them, and decodes nothing it does not need. It checks the record structure
(sizes, varints, header counts: :class:`InvalidRecordError`, Kafka's ``InvalidRecordException``)
and returns:

- the maximum record timestamp (``-1`` when no record has one), what Kafka writes as the batch's
  max timestamp (``setMaxTimestamp``);
- whether the records' offset deltas are exactly ``0..count-1`` (Kafka rebuilds a compressed
  batch when they are not);
- the per-record errors of Kafka's ``validateRecord``: a record without a key on a compacted
  topic, a timestamp outside ``[low, high]`` (``message.timestamp.before/after.max.ms``).

This module is written so that mypyc can compile it unchanged (``make accelerate``): plain typed
locals, ``bytes`` input, no closures. The pure-Python module is always the fallback.
"""

from __future__ import annotations

from typing import Final

from protocol.records.errors import InvalidRecordError

#: Record error kinds (the caller words the messages: it knows the topic partition).
MISSING_KEY: Final = 0
TIMESTAMP_OUT_OF_RANGE: Final = 1

#: (record index, kind, record timestamp, record offset delta)
RecordProblem = tuple[int, int, int, int]


def _premature_eof() -> InvalidRecordError:
    return InvalidRecordError("Incorrect declared batch size, premature EOF reached")


def _bad_structure() -> InvalidRecordError:
    return InvalidRecordError("Found invalid record structure")


def _read_varint(data: bytes, pos: int, end: int, max_bytes: int) -> tuple[int, int]:
    """The zig-zag varint (max_bytes 5) or varlong (10) at ``pos``, not reading at or past ``end``:
    ``(value, position after it)``. The inline fast paths in :func:`scan_records` handle the
    one- and two-byte forms; this handles the rest."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise _bad_structure()
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if pos - start >= max_bytes:
            raise InvalidRecordError(
                f"Varint is too long, the most significant bit in the {max_bytes}th byte is set"
            )
    if result >> (32 if max_bytes == 5 else 64):
        raise InvalidRecordError("Found invalid record structure: varint overflows")
    return (result >> 1) ^ -(result & 1), pos


def scan_records(
    data: bytes,
    pos: int,
    end: int,
    count: int,
    base_timestamp: int,
    compact: bool,
    check_timestamps: bool,
    low: int,
    high: int,
) -> tuple[int, bool, list[RecordProblem]]:
    """Scan ``count`` records in ``data[pos:end]`` (nothing may follow them).

    ``check_timestamps``: report records whose timestamp (when not -1) is outside ``[low, high]``.
    Returns ``(max timestamp, offset deltas are 0..count-1, record problems)``; problems are
    listed for every bad record (one per record: a missing key wins, as in Kafka).
    """
    max_ts = -1
    contiguous = True
    problems: list[RecordProblem] = []
    index = 0
    while index < count:
        # -- record length: varint; the body must fit in what is left of the batch.
        if pos >= end:
            raise _premature_eof()
        b = data[pos]
        if b < 0x80:
            size = (b >> 1) ^ -(b & 1)
            pos += 1
        elif pos + 1 < end and data[pos + 1] < 0x80:
            raw = (b & 0x7F) | (data[pos + 1] << 7)
            size = (raw >> 1) ^ -(raw & 1)
            pos += 2
        else:
            size, pos = _read_varint(data, pos, end, 5)
        if size < 0 or size > end - pos:
            raise InvalidRecordError(
                f"Invalid record size: expected {size} bytes in record payload, but instead the buffer "
                f"has only {end - pos} remaining bytes."
            )
        rend = pos + size
        # -- attributes (ignored in v2), then the timestamp delta (varlong).
        p = pos + 1
        if p < rend and data[p] < 0x80:
            b = data[p]
            ts_delta = (b >> 1) ^ -(b & 1)
            p += 1
        elif p + 1 < rend and data[p + 1] < 0x80:  # deltas up to 8 s
            raw = (data[p] & 0x7F) | (data[p + 1] << 7)
            ts_delta = (raw >> 1) ^ -(raw & 1)
            p += 2
        else:
            ts_delta, p = _read_varint(data, p, rend, 10)
        # -- offset delta (varint)
        if p < rend and data[p] < 0x80:
            b = data[p]
            delta = (b >> 1) ^ -(b & 1)
            p += 1
        else:
            delta, p = _read_varint(data, p, rend, 5)
        # -- key: length (-1 for null), skipped
        if p < rend and data[p] < 0x80:
            b = data[p]
            key_len = (b >> 1) ^ -(b & 1)
            p += 1
        else:
            key_len, p = _read_varint(data, p, rend, 5)
        if key_len > 0:
            p += key_len
        # -- value: length (-1 for null), skipped
        if p < rend and data[p] < 0x80:
            b = data[p]
            value_len = (b >> 1) ^ -(b & 1)
            p += 1
        elif p + 1 < rend and data[p + 1] < 0x80:
            raw = (data[p] & 0x7F) | (data[p + 1] << 7)
            value_len = (raw >> 1) ^ -(raw & 1)
            p += 2
        else:
            value_len, p = _read_varint(data, p, rend, 5)
        if value_len > 0:
            p += value_len
        # -- headers: a count, then (key length >= 0, key, value length, value) each
        if p < rend and data[p] < 0x80:
            b = data[p]
            headers = (b >> 1) ^ -(b & 1)
            p += 1
        else:
            headers, p = _read_varint(data, p, rend, 5)
        if headers != 0:
            p = _skip_headers(data, p, rend, headers)
        if p != rend:
            raise InvalidRecordError(
                f"Invalid record size: expected to read {size} bytes in record payload, "
                f"but instead read {p - pos}"
            )
        pos = rend

        timestamp = base_timestamp + ts_delta
        if timestamp > max_ts:
            max_ts = timestamp
        if delta != index:
            contiguous = False
        if compact and key_len < 0:
            problems.append((index, MISSING_KEY, timestamp, delta))
        elif check_timestamps and timestamp != -1 and (timestamp < low or timestamp > high):
            problems.append((index, TIMESTAMP_OUT_OF_RANGE, timestamp, delta))
        index += 1
    if pos != end:
        raise InvalidRecordError("Incorrect declared batch size, records still remaining in file")
    return max_ts, contiguous, problems


def _skip_headers(data: bytes, p: int, rend: int, headers: int) -> int:
    if headers < 0:
        raise InvalidRecordError(f"Found invalid number of record headers {headers}")
    if headers > rend - p:
        raise InvalidRecordError(
            f"Found invalid number of record headers. {headers} is larger than the remaining size "
            "of the buffer"
        )
    for _ in range(headers):
        key_len, p = _read_varint(data, p, rend, 5)
        if key_len < 0:
            raise InvalidRecordError(f"Invalid negative header key size {key_len}")
        p += key_len
        value_len, p = _read_varint(data, p, rend, 5)
        if value_len > 0:
            p += value_len
    return p
