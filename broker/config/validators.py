"""Value validators, mirroring the ``ConfigDef`` validators Kafka attaches to each key.

A validator sees the parsed value and raises :class:`ConfigError` with Kafka's wording
("Value must be at least 1", "String must be one of: ..."); ``describe()`` gives the
"valid values" text for documentation.

They are plain classes with ``__slots__``, not dataclasses: a broker's start imports them, and a
dataclass costs ~0.5 ms to create (nine of them were the largest part of importing the config).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from .errors import ConfigError
from .schema import ConfigValue
from .versions import version_index


class Validator(Protocol):
    def check(self, name: str, value: ConfigValue) -> None: ...

    def describe(self) -> str: ...


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class Range:
    """``atLeast``/``between``: numeric bounds, inclusive."""

    __slots__ = ("maximum", "minimum")

    def __init__(self, minimum: float | None = None, maximum: float | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def check(self, name: str, value: ConfigValue) -> None:
        if value is None:
            raise ConfigError.invalid(name, None, "Value must be non-null")
        assert isinstance(value, int | float)
        if self.minimum is not None and value < self.minimum:
            raise ConfigError.invalid(name, value, f"Value must be at least {_number_text(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError.invalid(name, value, f"Value must be no more than {_number_text(self.maximum)}")

    def describe(self) -> str:
        low = "" if self.minimum is None else _number_text(self.minimum)
        high = "" if self.maximum is None else _number_text(self.maximum)
        if self.maximum is None:
            return f"[{low},...]"
        return f"[{low},...,{high}]" if low else f"[...,{high}]"


def at_least(minimum: float) -> Range:
    return Range(minimum=minimum)


def between(minimum: float, maximum: float) -> Range:
    return Range(minimum=minimum, maximum=maximum)


class OneOf:
    """``ValidString.in``: the value must be one of ``choices`` (case-sensitive, as in Kafka)."""

    __slots__ = ("choices", "ignore_case")

    def __init__(self, choices: tuple[str, ...], ignore_case: bool = False) -> None:
        self.choices = choices
        self.ignore_case = ignore_case

    def check(self, name: str, value: ConfigValue) -> None:
        assert value is None or isinstance(value, str)
        if self.ignore_case:
            if value is None or value.upper() not in {c.upper() for c in self.choices}:
                raise ConfigError.invalid(
                    name, value, "String must be one of (case insensitive): " + ", ".join(self.choices)
                )
        elif value not in self.choices:
            raise ConfigError.invalid(name, value, "String must be one of: " + ", ".join(self.choices))

    def describe(self) -> str:
        prefix = "(case insensitive) " if self.ignore_case else ""
        return prefix + "[" + ", ".join(self.choices) + "]"


def one_of(*choices: str) -> OneOf:
    return OneOf(tuple(choices))


class EachOneOf:
    """``ValidList.in``: every list item must be one of ``choices`` (an empty list passes)."""

    __slots__ = ("choices",)

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def check(self, name: str, value: ConfigValue) -> None:
        assert value is None or isinstance(value, list)
        for item in value or []:
            OneOf(self.choices).check(name, item)

    def describe(self) -> str:
        return "[" + ", ".join(self.choices) + "]"


def each_one_of(*choices: str) -> EachOneOf:
    return EachOneOf(tuple(choices))


class NonEmptyString:
    """A string that, when given, is not empty (null is fine)."""

    __slots__ = ()

    def check(self, name: str, value: ConfigValue) -> None:
        if value == "":
            raise ConfigError.invalid(name, value, "String must be non-empty")

    def describe(self) -> str:
        return "non-empty string"


class MetricsListener:
    """Brook's ``brook.metrics.listener``: empty, or ``http://host:port``."""

    __slots__ = ()

    def check(self, name: str, value: ConfigValue) -> None:
        from broker.metrics.address import parse_metrics_listener

        try:
            parse_metrics_listener(str(value or ""))
        except ValueError as exc:
            raise ConfigError.invalid(name, value, str(exc)) from None

    def describe(self) -> str:
        return "empty or http://host:port"


class NonNull:
    __slots__ = ()

    def check(self, name: str, value: ConfigValue) -> None:
        if value is None:
            raise ConfigError.invalid(name, "null", "entry must be non null")

    def describe(self) -> str:
        return "non-null string"


class MetadataVersionValid:
    """A Kafka MetadataVersion string (``3.9``, ``3.9-IV0``, ``0.10.2``...)."""

    __slots__ = ()

    def check(self, name: str, value: ConfigValue) -> None:
        try:
            version_index(str(value))
        except ValueError as exc:
            raise ConfigError.invalid(name, value, str(exc)) from None

    def describe(self) -> str:
        return "a MetadataVersion such as 3.9, 3.9-IV0 or 2.8"


_REPLICA = re.compile(r"([0-9]+:[0-9]+)?")


class ThrottledReplicas:
    """``*`` or a list of ``partition:broker`` pairs (leader/follower.replication.throttled.replicas)."""

    __slots__ = ()

    def check(self, name: str, value: ConfigValue) -> None:
        assert isinstance(value, list)
        items = [item.strip() for item in value]
        if not (all(_REPLICA.fullmatch(i) for i in items) or "".join(items) == "*"):
            raise ConfigError.invalid(
                name,
                "[" + ", ".join(value) + "]",
                f"{name} must be the literal '*' or a list of replicas in the following format: "
                "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
            )

    def describe(self) -> str:
        return "[partitionId]:[brokerId],[partitionId]:[brokerId],..."


class RangeOrSentinel:
    """A range, or one special value (gzip level ``-1``; remote thread pools ``-1``)."""

    __slots__ = ("message", "range", "sentinel")

    def __init__(self, range: Range, sentinel: int, message: str) -> None:
        self.range = range
        self.sentinel = sentinel
        self.message = message

    def check(self, name: str, value: ConfigValue) -> None:
        if value == self.sentinel:
            return
        try:
            self.range.check(name, value)
        except ConfigError:
            raise ConfigError.invalid(name, value, self.message) from None

    def describe(self) -> str:
        return f"{self.range.describe()} or {self.sentinel}"


class AllOf:
    __slots__ = ("validators",)

    def __init__(self, validators: Sequence[Validator]) -> None:
        self.validators = validators

    def check(self, name: str, value: ConfigValue) -> None:
        for validator in self.validators:
            validator.check(name, value)

    def describe(self) -> str:
        return ", ".join(v.describe() for v in self.validators)
