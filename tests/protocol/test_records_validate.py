"""The record scanner (protocol.records.validate) against the record codec, and its mypyc-compiled
build against the pure-Python module: same results, same errors, on valid and mangled bytes."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records import Record, build_batch
from protocol.records import validate as imported
from protocol.records.batch import RECORD_BATCH_OVERHEAD
from protocol.records.errors import InvalidRecordError
from protocol.records.scanner import COMPILED, load_pure

PURE = load_pure()
MODULES = [pytest.param(PURE, id="pure")]
if COMPILED:
    MODULES.append(pytest.param(imported, id="mypyc"))

BASE_TS = 1_700_000_000_000

small_bytes = st.one_of(st.none(), st.binary(max_size=20), st.binary(min_size=60, max_size=300))
records_strategy = st.lists(
    st.tuples(
        small_bytes,  # key
        small_bytes,  # value
        st.lists(st.tuples(st.text(max_size=5), small_bytes), max_size=3),  # headers
        st.one_of(st.integers(-100, 100), st.integers(-(1 << 40), 1 << 40)),  # timestamp delta
        st.integers(1, 3),  # offset delta step
    ),
    min_size=1,
    max_size=12,
)


def encode(spec: list[Any]) -> tuple[list[Record], bytes]:
    records = []
    delta = -1
    for key, value, headers, ts_delta, step in spec:
        delta += step
        records.append(Record(delta, ts_delta, key, value, headers))
    batch = build_batch(records, base_timestamp=BASE_TS)
    return records, batch[RECORD_BATCH_OVERHEAD:]


def outcome(module: ModuleType, data: bytes, count: int, *args: Any) -> object:
    try:
        return module.scan_records(data, 0, len(data), count, BASE_TS, *args)
    except InvalidRecordError as exc:
        return ("InvalidRecordError", str(exc))


@pytest.mark.parametrize("module", MODULES)
@settings(max_examples=150, deadline=None)
@given(
    spec=records_strategy,
    compact=st.booleans(),
    bounds=st.tuples(st.integers(-200, 50), st.integers(-50, 200)),
)
def test_scan_matches_the_records(
    module: ModuleType, spec: list[Any], compact: bool, bounds: tuple[int, int]
) -> None:
    records, data = encode(spec)
    low, high = BASE_TS + bounds[0], BASE_TS + bounds[1]
    max_ts, contiguous, problems = module.scan_records(
        data, 0, len(data), len(records), BASE_TS, compact, True, low, high
    )
    timestamps = [BASE_TS + r.timestamp_delta for r in records]
    assert max_ts == max([-1, *timestamps])
    assert contiguous == ([r.offset_delta for r in records] == list(range(len(records))))
    expected = []
    for index, (record, ts) in enumerate(zip(records, timestamps, strict=True)):
        if compact and record.key is None:
            expected.append((index, module.MISSING_KEY, ts, record.offset_delta))
        elif ts != -1 and not low <= ts <= high:
            expected.append((index, module.TIMESTAMP_OUT_OF_RANGE, ts, record.offset_delta))
    assert problems == expected


mutation = st.tuples(
    st.sampled_from(["flip", "cut", "insert", "count"]), st.integers(0, 10_000), st.integers(0, 255)
)


@settings(max_examples=400, deadline=None)
@given(spec=records_strategy, mutations=st.lists(mutation, min_size=1, max_size=3))
def test_mangled_records_raise_invalid_record_only_and_both_builds_agree(
    spec: list[Any], mutations: list[tuple[str, int, int]]
) -> None:
    records, original = encode(spec)
    data = bytearray(original)
    count = len(records)
    for kind, where, value in mutations:
        at = where % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] = value
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value])
        else:
            count = value - 2
    results = [
        outcome(module.values[0], bytes(data), count, True, True, BASE_TS - 10, BASE_TS + 10)
        for module in MODULES
    ]
    assert all(result == results[0] for result in results)


def test_compiled_scanner_is_used_when_built() -> None:
    # Guard for the comparisons above: when the extension is built, they compare two builds.
    if not (imported.__file__ or "").endswith(".so"):
        pytest.skip("mypyc extension not built (make accelerate)")
    assert COMPILED and len(MODULES) == 2
