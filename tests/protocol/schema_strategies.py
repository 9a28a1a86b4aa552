"""Hypothesis strategies that build random message values from the schemas themselves.

For a message and version, every field the version has gets a random value of its type
(null only where the version allows it); fields the version lacks keep their default, since
encoding them would be an error (or, for ignorable fields, silently lost).
"""

from __future__ import annotations

import importlib
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from protocol.codegen.emit import module_name
from protocol.codegen.model import FieldDef, MessageDef, StructDef, load_all

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "kafka-protocol"

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


@cache
def messages() -> tuple[MessageDef, ...]:
    return tuple(load_all(SCHEMAS))


def message_class(message: MessageDef) -> Any:
    return getattr(importlib.import_module(f"protocol.messages.{module_name(message)}"), message.name)


def cases() -> list[tuple[MessageDef, int]]:
    """Every (message, version) pair of the schemas."""
    return [(m, v) for m in messages() for v in m.valid]


#: Error codes kio knows (it maps error codes into an enum and rejects others).
def _error_codes() -> st.SearchStrategy[int]:
    from protocol.error_codes import ErrorCode

    return st.sampled_from([int(e) for e in ErrorCode])


def _primitive(type_name: str, *, tame: bool = False, name: str = "") -> st.SearchStrategy[Any]:
    """Values of a primitive type. ``tame`` keeps integers small and non-negative and error
    codes valid, for oracles that map fields to richer types (durations, datetimes, enums)."""
    if tame and type_name in INT_RANGES:
        if name.endswith("error_code"):
            return _error_codes()
        return st.integers(0, min(INT_RANGES[type_name][1], 2**20))
    if type_name in INT_RANGES:
        lo, hi = INT_RANGES[type_name]
        return st.one_of(st.sampled_from([lo, hi, 0, -1 if lo < 0 else 1]), st.integers(lo, hi))
    if type_name == "bool":
        return st.booleans()
    if type_name == "float64":
        return st.floats(allow_nan=False)
    if type_name == "string":
        return st.text(max_size=12)
    if type_name in ("bytes", "records"):
        return st.binary(max_size=24)
    if type_name == "uuid":
        return st.one_of(st.just(uuid.UUID(int=0)), st.uuids())
    raise AssertionError(type_name)


def struct_strategy(module: Any, structs: dict[str, StructDef], name: str, fields: list[FieldDef],
                    version: int, flexible: bool, tame: bool = False) -> st.SearchStrategy[Any]:
    cls = getattr(module, name)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields:
        if not f.present_in(version):
            continue
        kwargs[f.py_name] = field_strategy(module, structs, f, version, flexible, tame)
    return st.builds(cls, **kwargs)


def field_strategy(module: Any, structs: dict[str, StructDef], f: FieldDef, version: int,
                   flexible: bool, tame: bool = False) -> st.SearchStrategy[Any]:
    element = f.element
    if f.is_struct_like:
        sub = structs[element]
        value: st.SearchStrategy[Any] = st.deferred(
            lambda: struct_strategy(module, structs, element, sub.fields, version, flexible, tame)
        )
    else:
        value = _primitive(element, tame=tame, name=f.py_name)
    if f.is_array:
        value = st.lists(value, max_size=3)
    if f.nullable_in(version):
        value = st.one_of(st.none(), value)
    return value


def message_strategy(message: MessageDef, version: int, *, tame: bool = False) -> st.SearchStrategy[Any]:
    module = importlib.import_module(f"protocol.messages.{module_name(message)}")
    return struct_strategy(module, message.structs(), message.name, message.fields, version,
                           version in message.flexible, tame)
