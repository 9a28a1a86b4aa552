"""What a configuration definition is: types, importance, sources and update modes.

Definitions are plain data (:class:`ConfigDef`) so that the broker-level and topic-level tables in
:mod:`broker_defs`, :mod:`security_defs` and :mod:`topic_defs` read like Kafka's documentation
tables, and every consumer (parsing, DescribeConfigs, CreateTopics validation) is driven from them.
The numeric ids of :class:`ConfigType` and :class:`ConfigSource` are the wire values of Kafka's
DescribeConfigs response (``DescribeConfigsResponse.ConfigType`` / ``ConfigSource``).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from storage.fast_dataclass import dataclass

if TYPE_CHECKING:
    from .validators import Validator

#: Java's Long.MAX_VALUE and Integer.MAX_VALUE, Kafka's "unlimited" for many settings.
LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
INT_MAX = (1 << 31) - 1
INT_MIN = -(1 << 31)
SHORT_MAX = (1 << 15) - 1
SHORT_MIN = -(1 << 15)
#: Java's Double.MAX_VALUE (default of log.cleaner.io.max.bytes.per.second).
DOUBLE_MAX = 1.7976931348623157e308


class ConfigType(enum.IntEnum):
    """A config's type; the value is the DescribeConfigs ``config_type`` id (v3+)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    """Where a value came from; the value is the DescribeConfigs ``config_source`` id (v1+).

    Kafka calls id 1 ``TOPIC_CONFIG`` on the wire and ``DYNAMIC_TOPIC_CONFIG`` in the admin client.
    """

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7


class Importance(enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class UpdateMode(enum.Enum):
    """How a broker config may change at run time (Kafka's ``DynamicBrokerConfig`` update modes).

    Only ``READ_ONLY`` configs are reported with ``read_only=true`` by DescribeConfigs.
    """

    READ_ONLY = "read-only"
    PER_BROKER = "per-broker"
    CLUSTER_WIDE = "cluster-wide"


@dataclass(frozen=True, slots=True)
class Password:
    """A secret value. Its ``str``/``repr`` never show the secret, so it cannot leak into logs."""

    value: str

    def __str__(self) -> str:
        return "[hidden]"

    def __repr__(self) -> str:
        return "Password([hidden])"


#: A parsed config value: bool, int (INT/SHORT/LONG), float (DOUBLE), str (STRING/CLASS),
#: list[str] (LIST), Password (PASSWORD) or None (no value, e.g. a null default).
ConfigValue = bool | int | float | str | list[str] | Password | None


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One config key: its type, Kafka's default (already parsed), and how it may be set.

    ``internal`` keys are understood when given but, as in Kafka, not listed by DescribeConfigs
    unless explicitly set.
    """

    name: str
    type: ConfigType
    default: ConfigValue
    importance: Importance
    doc: str
    validator: Validator | None = None
    update_mode: UpdateMode = UpdateMode.READ_ONLY
    internal: bool = False

    @property
    def sensitive(self) -> bool:
        return self.type is ConfigType.PASSWORD

    @property
    def read_only(self) -> bool:
        return self.update_mode is UpdateMode.READ_ONLY


def define(
    name: str,
    kind: ConfigType,
    default: ConfigValue,
    importance: Importance,
    doc: str,
    validator: Validator | None = None,
    *,
    internal: bool = False,
) -> ConfigDef:
    """Shorthand used by the definition tables (update modes are filled in by :mod:`dynamic`)."""
    return ConfigDef(name, kind, default, importance, doc, validator, internal=internal)
