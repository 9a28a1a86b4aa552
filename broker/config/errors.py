"""The one exception of the configuration layer.

Every problem with a configuration (a bad type, a value out of range, an unknown topic config, a
listener string that does not parse, a combination Kafka rejects) is a :class:`ConfigError`, so the
broker's startup can print one clear line and exit, and request handlers (CreateTopics,
AlterConfigs) can map it to ``INVALID_CONFIG`` (error code 40) without catching anything broader.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid configuration. ``name`` and ``value`` are set when one key is at fault.

    The message follows Kafka's ``ConfigException`` wording (``Invalid value V for configuration
    K: reason``) so operators searching Kafka documentation for the text find the same advice.
    """

    def __init__(self, message: str, *, name: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.name = name
        self.value = value

    @classmethod
    def invalid(cls, name: str, value: object, reason: str | None = None) -> ConfigError:
        """The Kafka-style error for one key: ``Invalid value <value> for configuration <name>``."""
        text = f"Invalid value {value} for configuration {name}"
        if reason:
            text += f": {reason}"
        return cls(text, name=name, value=value)
