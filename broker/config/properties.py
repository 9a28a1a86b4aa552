"""Reading ``server.properties`` the way ``java.util.Properties.load`` does.

Kafka loads its config with ``Properties.load``, so a file that works for Kafka must mean the same
here, including the odd corners: ``!`` comments, ``key value`` with no separator, ``key:value``,
backslash line continuations (leading blanks of the next line dropped), ``\\uXXXX`` escapes, an
escaped separator inside a key, and "a comment line cannot be continued".

One deliberate difference: Java reads the bytes as ISO-8859-1; Brook reads UTF-8 (what editors
write today) and falls back to ISO-8859-1 only when the file is not valid UTF-8. Pure ASCII files,
the norm, are read identically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError

_BLANKS = " \t\f"
_NATURAL_LINE = re.compile(r"\r\n|\r|\n")
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Yield (first line number, logical line) with comments/blank lines dropped and
    continuations joined; escapes are still raw."""
    lines = _NATURAL_LINE.split(text)
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].lstrip(_BLANKS)
        index += 1
        if not line or line[0] in "#!":
            continue
        while _ends_with_continuation(line):
            line = line[:-1]
            if index == len(lines):
                break
            line += lines[index].lstrip(_BLANKS)
            index += 1
        yield number, line


def _ends_with_continuation(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split_key_value(line: str) -> tuple[str, str]:
    position = 0
    escaped = False
    while position < len(line):
        char = line[position]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "=:" or char in _BLANKS:
            break
        position += 1
    key = line[:position]
    rest = line[position:]
    rest = rest.lstrip(_BLANKS)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_BLANKS)
    return key, rest


def _unescape(raw: str, line_number: int) -> str:
    out: list[str] = []
    position = 0
    while position < len(raw):
        char = raw[position]
        position += 1
        if char != "\\":
            out.append(char)
            continue
        if position >= len(raw):
            break  # a lone trailing backslash vanishes, as in Java
        code = raw[position]
        position += 1
        if code == "u":
            digits = raw[position : position + 4]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ConfigError(f"Malformed \\uxxxx encoding on line {line_number}: {raw!r}")
            out.append(chr(int(digits, 16)))
            position += 4
        else:
            out.append(_SIMPLE_ESCAPES.get(code, code))
    return "".join(out)


def parse_properties(text: str) -> dict[str, str]:
    """Parse the text of a Java properties file; later duplicates win, as in Java."""
    result: dict[str, str] = {}
    for number, line in _logical_lines(text):
        key, value = _split_key_value(line)
        result[_unescape(key, number)] = _unescape(value, number)
    return result


def read_properties(path: Path) -> dict[str, str]:
    """Read and parse a properties file; ConfigError if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    return parse_properties(text)


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """``--override key=value`` entries, split at the first ``=``; later entries win.

    As in Kafka (``CommandLineUtils.parseKeyValueArgs``) a bare ``key`` means an empty value."""
    result: dict[str, str] = {}
    for entry in overrides:
        key, _, value = entry.partition("=")
        if not key:
            raise ConfigError(f"Invalid override {entry!r}: expected key=value")
        result[key] = value
    return result
