"""The schema model: Kafka's message JSON files parsed into typed definitions.

The rules follow Kafka's generator (clients/src/main/resources/common/message/README.md):
field versions, nullable versions, tagged versions, flexible versions, defaults, ignorable
fields, inline structs and common structs.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAX_VERSION = 0x7FFF

PRIMITIVES = frozenset(
    {
        "bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64",
        "string", "bytes", "uuid", "records",
    }
)
#: Primitive types of fixed width, with their struct codes.
FIXED_CODES = {
    "bool": "?",
    "int8": "b",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "float64": "d",
    "uuid": "16s",
}


@dataclass(frozen=True)
class Versions:
    """An inclusive version range; empty when ``lo > hi``."""

    lo: int
    hi: int

    @staticmethod
    def parse(text: str | None) -> Versions:
        if text is None or text.strip() in ("", "none"):
            return NO_VERSIONS
        text = text.strip()
        if text.endswith("+"):
            return Versions(int(text[:-1]), MAX_VERSION)
        if "-" in text:
            lo, hi = text.split("-")
            return Versions(int(lo), int(hi))
        return Versions(int(text), int(text))

    def __contains__(self, version: int) -> bool:
        return self.lo <= version <= self.hi

    @property
    def empty(self) -> bool:
        return self.lo > self.hi

    def intersect(self, other: Versions) -> Versions:
        return Versions(max(self.lo, other.lo), min(self.hi, other.hi))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.lo, self.hi + 1))

    def __str__(self) -> str:
        if self.empty:
            return "none"
        if self.hi == MAX_VERSION:
            return f"{self.lo}+"
        return f"{self.lo}-{self.hi}" if self.lo != self.hi else str(self.lo)


NO_VERSIONS = Versions(1, 0)


def snake_case(name: str) -> str:
    name = name.replace("KRaft", "Kraft")
    out = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    if keyword.iskeyword(out) or out in ("self", "cls"):
        out += "_"
    return out


@dataclass
class FieldDef:
    name: str
    type: str
    versions: Versions
    nullable: Versions = NO_VERSIONS
    tagged: Versions = NO_VERSIONS
    tag: int | None = None
    flexible_override: Versions | None = None
    default: str | None = None
    ignorable: bool = False
    zero_copy: bool = False
    about: str = ""
    #: Fields of an inline struct (array of structs or struct); None when the type is a
    #: primitive or names a common struct.
    fields: list[FieldDef] | None = None

    @property
    def py_name(self) -> str:
        return snake_case(self.name)

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct_like(self) -> bool:
        return self.element not in PRIMITIVES

    def nullable_in(self, version: int) -> bool:
        return version in self.nullable

    def tagged_in(self, version: int) -> bool:
        return self.tag is not None and version in self.tagged

    def present_in(self, version: int) -> bool:
        return version in self.versions


@dataclass
class StructDef:
    name: str
    versions: Versions
    fields: list[FieldDef]


@dataclass
class MessageDef:
    name: str
    kind: str  # request | response | header | data
    api_key: int | None
    valid: Versions
    flexible: Versions
    fields: list[FieldDef]
    listeners: list[str] = field(default_factory=list)
    latest_unstable: bool = False
    deprecated: Versions = NO_VERSIONS
    common_structs: list[StructDef] = field(default_factory=list)
    source: str = ""

    def structs(self) -> dict[str, StructDef]:
        """Every struct of the message by name, nested inline structs and common structs."""
        found: dict[str, StructDef] = {}
        for common in self.common_structs:
            found[common.name] = common
            _collect(common.fields, found)
        _collect(self.fields, found)
        return found


def _collect(fields: list[FieldDef], found: dict[str, StructDef]) -> None:
    for f in fields:
        if f.fields is not None:
            name = f.element
            if name in found and found[name].fields is not f.fields:
                raise ValueError(f"struct {name} defined twice")
            found[name] = StructDef(name, f.versions, f.fields)
            _collect(f.fields, found)


def _strip_comments(text: str) -> str:
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def _parse_field(raw: dict[str, object]) -> FieldDef:
    def text(key: str) -> str | None:
        value = raw.get(key)
        return None if value is None else str(value)

    versions = Versions.parse(text("versions"))
    nested = raw.get("fields")
    tag = raw.get("tag")
    tagged = Versions.parse(text("taggedVersions")) if "taggedVersions" in raw else NO_VERSIONS
    flexible = text("flexibleVersions")
    default = raw.get("default")
    return FieldDef(
        name=str(raw["name"]),
        type=str(raw["type"]).strip(),
        versions=versions,
        nullable=Versions.parse(text("nullableVersions")),
        tagged=tagged,
        tag=int(str(tag)) if tag is not None else None,
        flexible_override=Versions.parse(flexible) if flexible is not None else None,
        default=None if default is None else str(default),
        ignorable=bool(raw.get("ignorable", False)),
        zero_copy=bool(raw.get("zeroCopy", False)),
        about=str(raw.get("about", "")),
        fields=[_parse_field(f) for f in nested] if isinstance(nested, list) else None,
    )


def load_message(path: Path) -> MessageDef:
    raw = json.loads(_strip_comments(path.read_text(encoding="utf-8")))
    api_key = raw.get("apiKey")
    return MessageDef(
        name=raw["name"],
        kind=raw["type"],
        api_key=int(api_key) if api_key is not None else None,
        valid=Versions.parse(raw["validVersions"]),
        flexible=Versions.parse(raw.get("flexibleVersions")),
        fields=[_parse_field(f) for f in raw.get("fields", [])],
        listeners=list(raw.get("listeners", [])),
        latest_unstable=bool(raw.get("latestVersionUnstable", False)),
        deprecated=Versions.parse(raw.get("deprecatedVersions")),
        common_structs=[
            StructDef(s["name"], Versions.parse(s.get("versions")), [_parse_field(f) for f in s["fields"]])
            for s in raw.get("commonStructs", [])
        ],
        source=path.name,
    )


def load_all(schema_root: Path) -> list[MessageDef]:
    """Every message of ``message/`` and ``internal-records/`` under ``schema_root``."""
    paths = sorted((schema_root / "message").glob("*.json")) + sorted(
        (schema_root / "internal-records").glob("*.json")
    )
    return [load_message(p) for p in paths]
