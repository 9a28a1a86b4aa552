"""Record batches (magic v2) and legacy message sets (magic 0/1).

Modules: :mod:`.batch` (zero-copy v2 header view, iteration, in-place patching), :mod:`.record`
(record decode/encode, control records), :mod:`.compression` (codecs), :mod:`.legacy` (magic 0/1),
:mod:`.convert` (up/down-conversion), :mod:`.errors`. Sans I/O; imports nothing from broker/storage.

The magic 0/1 names (:mod:`.legacy`, :mod:`.convert`) are imported at their first use (PEP 562):
most brokers never see a pre-0.11 client, and every start imports this package.
"""

import importlib
from typing import TYPE_CHECKING, Any

from protocol.records.batch import (
    BatchHeader,
    compute_crc,
    crc_is_valid,
    entry_prefix,
    iter_batches,
    iter_entries,
    magic_at,
    read_header,
    set_base_offset,
    set_log_append_time,
    set_max_timestamp,
    set_partition_leader_epoch,
)
from protocol.records.compression import DEFAULT_MAX_UNCOMPRESSED_SIZE, GZIP, LZ4, NONE, SNAPPY, ZSTD
from protocol.records.errors import InvalidRecordError, UnsupportedCompressionError
from protocol.records.record import (
    ABORT,
    COMMIT,
    NO_TIMESTAMP,
    Record,
    build_batch,
    build_control_batch,
    control_record,
    decode_batch,
    parse_control_key,
    parse_end_txn_marker,
    record_offset,
    record_timestamp,
)

if TYPE_CHECKING:
    from protocol.records.convert import downconvert, upconvert_to_v2
    from protocol.records.legacy import LegacyMessage, build_message_set, iter_legacy_messages

_LAZY_MODULE_OF = {
    "downconvert": "convert",
    "upconvert_to_v2": "convert",
    "LegacyMessage": "legacy",
    "build_message_set": "legacy",
    "iter_legacy_messages": "legacy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ABORT",
    "COMMIT",
    "DEFAULT_MAX_UNCOMPRESSED_SIZE",
    "GZIP",
    "LZ4",
    "NONE",
    "NO_TIMESTAMP",
    "SNAPPY",
    "ZSTD",
    "BatchHeader",
    "InvalidRecordError",
    "LegacyMessage",
    "Record",
    "UnsupportedCompressionError",
    "build_batch",
    "build_control_batch",
    "build_message_set",
    "compute_crc",
    "control_record",
    "crc_is_valid",
    "decode_batch",
    "downconvert",
    "entry_prefix",
    "iter_batches",
    "iter_entries",
    "iter_legacy_messages",
    "magic_at",
    "parse_control_key",
    "parse_end_txn_marker",
    "read_header",
    "record_offset",
    "record_timestamp",
    "set_base_offset",
    "set_log_append_time",
    "set_max_timestamp",
    "set_partition_leader_epoch",
    "upconvert_to_v2",
]
