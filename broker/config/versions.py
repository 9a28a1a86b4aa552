"""Kafka's MetadataVersion strings, for ``inter.broker.protocol.version`` and
``log.message.format.version`` / ``message.format.version``.

Kafka accepts an exact version (``3.9-IV0``, ``0.10.0-IV1``), a release (``3.9``, ``0.10.0``,
meaning its last sub-version) and longer dotted forms it truncates (``3.9.1`` -> ``3.9``,
``0.10.0.1`` -> ``0.10.0``). Brook only needs to validate and order them; it speaks the current
record format regardless.
"""

from __future__ import annotations

#: Every MetadataVersion of Kafka 3.9, oldest first, as (release, sub-version).
_VERSIONS: tuple[tuple[str, str], ...] = (
    ("0.8.0", ""), ("0.8.1", ""), ("0.8.2", ""), ("0.9.0", ""),
    ("0.10.0", "IV0"), ("0.10.0", "IV1"), ("0.10.1", "IV0"), ("0.10.1", "IV1"), ("0.10.1", "IV2"),
    ("0.10.2", "IV0"), ("0.11.0", "IV0"), ("0.11.0", "IV1"), ("0.11.0", "IV2"),
    ("1.0", "IV0"), ("1.1", "IV0"), ("2.0", "IV0"), ("2.0", "IV1"),
    ("2.1", "IV0"), ("2.1", "IV1"), ("2.1", "IV2"), ("2.2", "IV0"), ("2.2", "IV1"),
    ("2.3", "IV0"), ("2.3", "IV1"), ("2.4", "IV0"), ("2.4", "IV1"), ("2.5", "IV0"), ("2.6", "IV0"),
    ("2.7", "IV0"), ("2.7", "IV1"), ("2.7", "IV2"), ("2.8", "IV0"), ("2.8", "IV1"),
    ("3.0", "IV0"), ("3.0", "IV1"), ("3.1", "IV0"), ("3.2", "IV0"),
    ("3.3", "IV0"), ("3.3", "IV1"), ("3.3", "IV2"), ("3.3", "IV3"), ("3.4", "IV0"),
    ("3.5", "IV0"), ("3.5", "IV1"), ("3.5", "IV2"), ("3.6", "IV0"), ("3.6", "IV1"), ("3.6", "IV2"),
    ("3.7", "IV0"), ("3.7", "IV1"), ("3.7", "IV2"), ("3.7", "IV3"), ("3.7", "IV4"),
    ("3.8", "IV0"), ("3.9", "IV0"), ("4.0", "IV0"), ("4.0", "IV1"),
)  # fmt: skip

_INDEX: dict[str, int] = {}
for _position, (_release, _sub) in enumerate(_VERSIONS):
    _INDEX[f"{_release}-{_sub}" if _sub else _release] = _position
    _INDEX[_release] = _position  # a bare release means its latest sub-version

#: ``inter.broker.protocol.version`` default: Kafka 3.9's latest production version.
LATEST_PRODUCTION = "3.9-IV0"
#: ``log.message.format.version`` default; also the value used once IBP >= 3.0 (format v2 only).
IBP_3_0_IV1 = "3.0-IV1"


def version_index(text: str) -> int:
    """Position of a version string in Kafka's ordering; ``ValueError`` if Kafka would reject it."""
    segments = text.split(".")
    keep = 3 if text.startswith("0.") else 2
    key = text if keep >= len(segments) else ".".join(segments[:keep])
    if key not in _INDEX:
        raise ValueError(f"Version {text} is not a valid version")
    return _INDEX[key]


def is_at_least(text: str, other: str) -> bool:
    return version_index(text) >= version_index(other)
