"""Brook's configuration layer: Kafka 3.9's broker and topic configs, with Kafka's names, types,
defaults, validation and DescribeConfigs reporting.

Entry points:

* :func:`load_config` - server.properties + ``KAFKA_*`` environment + ``--override`` -> :class:`BrokerConfig`
* :class:`BrokerConfig` - typed accessors (``node_id``, ``listeners``, ``log_dirs``...), ``get``,
  ``is_set``, ``source``, ``log_config()``, ``with_dynamic()``
* :func:`validate_topic_configs`, :func:`topic_log_config` - topic overrides
* :func:`describe_broker`, :func:`describe_topic`, :func:`describe_cluster_defaults` - DescribeConfigs
* :func:`config_from_environment`, :func:`parse_properties` - the input formats

Everything here is pure: nothing is written to disk.
"""

from .describe import ConfigEntry, ConfigSynonym, describe_broker, describe_cluster_defaults, describe_topic
from .environment import config_from_environment
from .errors import ConfigError
from .listeners import Listener
from .loader import load_config
from .model import EMBEDDED_DEFAULTS, BrokerConfig
from .properties import parse_overrides, parse_properties, read_properties
from .registry import BROKER_CONFIGS, broker_definition
from .schema import ConfigDef, ConfigSource, ConfigType, ConfigValue, Importance, Password, UpdateMode
from .topic import (
    is_list_config,
    parse_topic_configs,
    topic_default_text,
    topic_log_config,
    topic_values,
    validate_topic_configs,
)
from .topic_defs import TOPIC_CONFIGS, TOPIC_SYNONYMS

__all__ = [
    "BROKER_CONFIGS",
    "EMBEDDED_DEFAULTS",
    "TOPIC_CONFIGS",
    "TOPIC_SYNONYMS",
    "BrokerConfig",
    "ConfigDef",
    "ConfigEntry",
    "ConfigError",
    "ConfigSource",
    "ConfigSynonym",
    "ConfigType",
    "ConfigValue",
    "Importance",
    "Listener",
    "Password",
    "UpdateMode",
    "broker_definition",
    "config_from_environment",
    "describe_broker",
    "describe_cluster_defaults",
    "describe_topic",
    "is_list_config",
    "load_config",
    "parse_overrides",
    "parse_properties",
    "parse_topic_configs",
    "read_properties",
    "topic_default_text",
    "topic_log_config",
    "topic_values",
    "validate_topic_configs",
]
