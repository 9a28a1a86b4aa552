"""Descriptions of the apis and data types the generated index lists.

Named tuples, not dataclasses: the index builds one per api when the protocol is first imported,
and a frozen dataclass costs about ten times a named tuple to create (a broker's first start).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from protocol.message import Message


def _load(module: str, name: str) -> type[Message]:
    cls: type[Message] = getattr(importlib.import_module(f"protocol.messages.{module}"), name)
    return cls


class ApiSpec(NamedTuple):
    """One api of the protocol: its request and response types and version ranges."""

    api_key: int
    name: str
    request_module: str
    request_class: str
    response_module: str
    response_class: str
    min_version: int
    max_version: int
    #: First flexible version, or None.
    flexible_min: int | None
    #: Kafka's listener types that accept the api: zkBroker, broker, controller.
    listeners: tuple[str, ...]
    #: Whether the latest version is marked unstable (not advertised by default in Kafka).
    latest_unstable: bool
    deprecated: tuple[int, int] | None

    def request_type(self) -> type[Message]:
        return _load(self.request_module, self.request_class)

    def response_type(self) -> type[Message]:
        return _load(self.response_module, self.response_class)

    def is_flexible(self, version: int) -> bool:
        return self.flexible_min is not None and version >= self.flexible_min

    @property
    def max_stable_version(self) -> int:
        return self.max_version - 1 if self.latest_unstable else self.max_version


class DataSpec(NamedTuple):
    """A versioned data type that is not an api body (headers, internal records, embedded data)."""

    name: str
    module: str
    kind: str

    def type(self) -> type[Message]:
        return _load(self.module, self.name)
