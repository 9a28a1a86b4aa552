"""Text <-> typed values, with the exact rules of Kafka's ``ConfigDef.parseType``/``convertToString``.

Kafka trims every value with Java's ``String.trim`` (which strips ASCII control characters and
space, not Unicode whitespace), accepts integers only as an optional sign and decimal digits (no
``1_000``, no ``0x10``), compares booleans case-insensitively, and splits lists on commas with the
surrounding whitespace. Rendering must match too, because DescribeConfigs shows these strings to
tools that diff them against a real Kafka (``0.5``, ``1.7976931348623157E308``, ``true``).
"""

from __future__ import annotations

import re

from .errors import ConfigError
from .schema import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    SHORT_MAX,
    SHORT_MIN,
    ConfigType,
    ConfigValue,
    Password,
)

_JAVA_TRIM = "".join(chr(c) for c in range(0x21))
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DOUBLE = re.compile(r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)")
_LIST_SEPARATOR = re.compile(r"[ \t\n\x0b\f\r]*,[ \t\n\x0b\f\r]*")
_JAVA_IDENTIFIER = r"[A-Za-z_$][A-Za-z0-9_$]*"
_CLASS_NAME = re.compile(rf"{_JAVA_IDENTIFIER}(?:\.{_JAVA_IDENTIFIER})*")
_INT_BOUNDS = {
    ConfigType.INT: (INT_MIN, INT_MAX),
    ConfigType.SHORT: (SHORT_MIN, SHORT_MAX),
    ConfigType.LONG: (LONG_MIN, LONG_MAX),
}


def java_trim(text: str) -> str:
    """``String.trim()``: strip code points <= U+0020 at both ends."""
    return text.strip(_JAVA_TRIM)


def parse_list(text: str) -> list[str]:
    """Kafka's LIST parsing: empty (after trimming) is an empty list, else split on commas.

    Empty items are kept (``"a,"`` is ``["a", ""]``) exactly as Java's ``split(regex, -1)``."""
    trimmed = java_trim(text)
    if not trimmed:
        return []
    return _LIST_SEPARATOR.split(trimmed)


def parse_value(name: str, kind: ConfigType, raw: str) -> ConfigValue:
    """Parse the text ``raw`` of config ``name`` as ``kind``; :class:`ConfigError` if it cannot be."""
    trimmed = java_trim(raw)
    if kind is ConfigType.BOOLEAN:
        lowered = trimmed.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise ConfigError.invalid(name, raw, "Expected value to be either true or false")
    if kind in _INT_BOUNDS:
        low, high = _INT_BOUNDS[kind]
        if _INTEGER.fullmatch(trimmed) is None or not low <= int(trimmed) <= high:
            raise ConfigError.invalid(name, raw, f"Not a number of type {kind.name}")
        return int(trimmed)
    if kind is ConfigType.DOUBLE:
        if _DOUBLE.fullmatch(trimmed) is None:
            raise ConfigError.invalid(name, raw, "Not a number of type DOUBLE")
        return _parse_java_double(trimmed)
    if kind is ConfigType.LIST:
        return parse_list(trimmed)
    if kind is ConfigType.CLASS:
        if _CLASS_NAME.fullmatch(trimmed) is None:
            raise ConfigError.invalid(name, raw, f"Class {raw} could not be found.")
        return trimmed
    if kind is ConfigType.PASSWORD:
        return Password(trimmed)
    return trimmed


def _parse_java_double(text: str) -> float:
    body = text[:-1] if text[-1] in "fFdD" else text
    if body.lstrip("+-") == "NaN":
        return float("nan")
    if body.lstrip("+-") == "Infinity":
        return float("-inf") if body.startswith("-") else float("inf")
    return float(body)


def java_double_str(value: float) -> str:
    """``Double.toString``: plain notation within [1e-3, 1e7), else ``d.dddE<exp>``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0.0:
        return "-0.0" if str(value).startswith("-") else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        return repr(value)  # Python's repr is plain (with ".0") in exactly this range
    from decimal import Decimal  # rarely needed: not loaded with every start

    sign = "-" if value < 0 else ""
    _, digits, exponent = Decimal(repr(magnitude)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    scientific = len(digits) + exponent - 1
    return f"{sign}{text[0]}.{text[1:] or '0'}E{scientific}"


def format_value(kind: ConfigType, value: ConfigValue) -> str | None:
    """``ConfigDef.convertToString``: the text Kafka shows for a parsed value (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Password):
        return str(value)
    if isinstance(value, float):
        return java_double_str(value)
    if isinstance(value, int) and kind is ConfigType.DOUBLE:
        return java_double_str(float(value))
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def raw_text(value: ConfigValue) -> str | None:
    """Like :func:`format_value` but reveals passwords: the string a static/default synonym holds
    (Kafka's ``convertToStringMapWithPasswordValues``). Callers hide sensitive ones themselves."""
    if isinstance(value, Password):
        return value.value
    return format_value(ConfigType.UNKNOWN, value)
