"""The console tools' text formats, pure: Kafka's LineMessageReader (a line into headers, key and
value) and DefaultMessageFormatter (a record into a line), plus the default partitioner's murmur2."""

from __future__ import annotations

from collections.abc import Mapping

from broker.cli.client import CliError
from storage.fast_dataclass import dataclass

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class LineReaderConfig:
    parse_key: bool = False
    key_separator: str = "\t"
    parse_headers: bool = False
    headers_delimiter: str = "\t"
    headers_separator: str = ","
    headers_key_separator: str = ":"
    ignore_error: bool = False
    null_marker: str | None = None

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> LineReaderConfig:
        def flag(name: str) -> bool:
            return props.get(name, "false").strip().lower() == "true"

        config = cls(
            parse_key=flag("parse.key"),
            key_separator=props.get("key.separator", "\t"),
            parse_headers=flag("parse.headers"),
            headers_delimiter=props.get("headers.delimiter", "\t"),
            headers_separator=props.get("headers.separator", ","),
            headers_key_separator=props.get("headers.key.separator", ":"),
            ignore_error=flag("ignore.error"),
            null_marker=props.get("null.marker"),
        )
        config.check()
        return config

    def check(self) -> None:
        pairs = [
            ("headers.delimiter", self.headers_delimiter, "headers.separator", self.headers_separator),
            (
                "headers.delimiter",
                self.headers_delimiter,
                "headers.key.separator",
                self.headers_key_separator,
            ),
            (
                "headers.separator",
                self.headers_separator,
                "headers.key.separator",
                self.headers_key_separator,
            ),
        ]
        if self.null_marker is not None:
            pairs += [
                ("null.marker", self.null_marker, "key.separator", self.key_separator),
                ("null.marker", self.null_marker, "headers.separator", self.headers_separator),
                ("null.marker", self.null_marker, "headers.delimiter", self.headers_delimiter),
                ("null.marker", self.null_marker, "headers.key.separator", self.headers_key_separator),
            ]
        for a, va, b, vb in pairs:
            if va == vb:
                raise CliError(f"{a} and {b} may not be equal")


@dataclass(frozen=True, slots=True)
class ParsedLine:
    key: bytes | None
    value: bytes | None
    headers: list[Header]


def parse_line(line: str, config: LineReaderConfig, line_number: int) -> ParsedLine:
    """LineMessageReader: ``[headers<delimiter>][key<separator>]value`` (line without its newline)."""
    headers = _cut(
        config.parse_headers, line, 0, config.headers_delimiter, "headers delimiter", config, line_number
    )
    header_offset = 0 if headers is None else len(headers) + len(config.headers_delimiter)
    key = _cut(
        config.parse_key, line, header_offset, config.key_separator, "key separator", config, line_number
    )
    key_offset = 0 if key is None else len(key) + len(config.key_separator)
    value = line[header_offset + key_offset :]
    parsed_headers: list[Header] = []
    if headers is not None and headers != config.null_marker:
        parsed_headers = _split_headers(headers, config, line_number)
    return ParsedLine(
        key=None if key is None or key == config.null_marker else key.encode(),
        value=None if value == config.null_marker else value.encode(),
        headers=parsed_headers,
    )


def _cut(
    enabled: bool,
    line: str,
    start: int,
    demarcation: str,
    name: str,
    config: LineReaderConfig,
    line_number: int,
) -> str | None:
    if not enabled:
        return None
    index = line.find(demarcation, start)
    if index < 0:
        if config.ignore_error:
            return None
        raise CliError(f"No {name} found on line number {line_number}: '{line}'")
    return line[start:index]


def _split_headers(text: str, config: LineReaderConfig, line_number: int) -> list[Header]:
    pairs = text.split(config.headers_separator)
    while pairs and pairs[-1] == "":  # Java's String.split drops trailing empty strings
        pairs.pop()
    result: list[Header] = []
    for pair in pairs:
        i = pair.find(config.headers_key_separator)
        if i < 0:
            if config.ignore_error:
                result.append((pair, None))
                continue
            raise CliError(f"No header key separator found in pair '{pair}' on line number {line_number}")
        key = pair[:i]
        if key == config.null_marker:
            raise CliError(
                f"Header keys should not be equal to the null marker '{config.null_marker}' "
                "as they can't be null"
            )
        value = pair[i + len(config.headers_key_separator) :]
        result.append((key, None if value == config.null_marker else value.encode()))
    return result


@dataclass(frozen=True, slots=True)
class FormatterConfig:
    print_timestamp: bool = False
    print_key: bool = False
    print_value: bool = True
    print_partition: bool = False
    print_offset: bool = False
    print_headers: bool = False
    key_separator: bytes = b"\t"
    line_separator: bytes = b"\n"
    headers_separator: bytes = b","
    null_literal: bytes = b"null"

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> FormatterConfig:
        def flag(name: str, default: bool) -> bool:
            return props[name].strip().lower() == "true" if name in props else default

        def text(name: str, default: bytes) -> bytes:
            return props[name].encode() if name in props else default

        return cls(
            print_timestamp=flag("print.timestamp", False),
            print_key=flag("print.key", False),
            print_value=flag("print.value", True),
            print_partition=flag("print.partition", False),
            print_offset=flag("print.offset", False),
            print_headers=flag("print.headers", False),
            key_separator=text("key.separator", b"\t"),
            line_separator=text("line.separator", b"\n"),
            headers_separator=text("headers.separator", b","),
            null_literal=text("null.literal", b"null"),
        )


TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}


def format_record(
    config: FormatterConfig,
    *,
    timestamp_type: int,
    timestamp: int,
    partition: int,
    offset: int,
    headers: list[Header],
    key: bytes | None,
    value: bytes | None,
) -> bytes:
    """DefaultMessageFormatter.writeTo: the enabled fields in Kafka's order, each followed by the key
    separator when a later field is printed; the value ends with the line separator."""
    fields: list[bytes] = []
    if config.print_timestamp:
        name = TIMESTAMP_TYPES.get(timestamp_type)
        fields.append(
            f"{name}:{timestamp}".encode() if name is not None and timestamp >= 0 else b"NO_TIMESTAMP"
        )
    if config.print_partition:
        fields.append(f"Partition:{partition}".encode())
    if config.print_offset:
        fields.append(f"Offset:{offset}".encode())
    if config.print_headers:
        if headers:
            fields.append(
                config.headers_separator.join(
                    k.encode() + b":" + (config.null_literal if v is None else v) for k, v in headers
                )
            )
        else:
            fields.append(b"NO_HEADERS")
    if config.print_key:
        fields.append(config.null_literal if key is None else key)
    out = config.key_separator.join(fields)
    if config.print_value:
        if fields:
            out += config.key_separator
        out += (config.null_literal if value is None else value) + config.line_separator
    return out


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 (seed 0x9747b28c), as a signed 32-bit int."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The default partitioner's choice for a keyed record: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
