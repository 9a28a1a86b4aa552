"""Broker configs from ``KAFKA_*`` environment variables, as Apache Kafka's official Docker image
reads them (``kafka.docker.KafkaDockerWrapper``), so compose files written for ``apache/kafka``
configure Brook the same way.

``KAFKA_ADVERTISED_LISTENERS`` -> ``advertised.listeners``: drop the prefix, lower-case, then
``_`` -> ``.``, and afterwards ``...`` -> ``-`` and ``..`` -> ``_`` (so ``___`` in the variable
means ``-`` and ``__`` means ``_``). Variables that configure the JVM or logging, not the broker,
are skipped.

Differences from the Kafka image, on purpose:

* Kafka removes every ``KAFKA_`` in the name (``KAFKA_KAFKA_METRICS_REPORTERS`` would become
  ``metrics.reporters``); Brook strips only the leading prefix, which is what the convention means.
* Kafka writes the values into a properties file and re-reads it, so backslashes in a value are
  interpreted as escapes; Brook returns values verbatim.
* Besides Kafka's exclusion list, Brook also skips ``KAFKA_JMX_*``, ``KAFKA_LOG4J_*``, ``KAFKA_JVM_*``,
  ``KAFKA_GC_*`` and the other launcher variables (``KAFKA_DEBUG``, ``KAFKA_MODE``...), none of which
  name a broker config.
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIX = "KAFKA_"

#: Exactly the variables Kafka's image excludes (``Constants.ExcludeServerPropsEnv``) plus the
#: other ones Kafka's launch scripts read (``kafka-run-class.sh``).
EXCLUDED = frozenset({
    "KAFKA_VERSION", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME",
    "KAFKA_JMX_PORT", "KAFKA_DEBUG", "KAFKA_MODE", "KAFKA_LOG4J_CMD_OPTS", "KAFKA_STREAMS_TEST_VERSION",
    "KAFKA_HOME",
})  # fmt: skip
EXCLUDED_PREFIXES = ("KAFKA_JMX_", "KAFKA_LOG4J_", "KAFKA_JVM_", "KAFKA_GC_")


def env_to_config_name(variable: str) -> str:
    """``KAFKA_LOG_RETENTION_HOURS`` -> ``log.retention.hours`` (no exclusion check)."""
    name = variable[len(PREFIX) :] if variable.startswith(PREFIX) else variable
    return name.lower().replace("_", ".").replace("...", "-").replace("..", "_")


def is_config_variable(variable: str) -> bool:
    return (
        variable.startswith(PREFIX)
        and len(variable) > len(PREFIX)
        and variable not in EXCLUDED
        and not variable.startswith(EXCLUDED_PREFIXES)
    )


def config_from_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The broker configs named by ``KAFKA_*`` variables of ``env`` (sorted by variable name, so
    the result does not depend on the order of the environment)."""
    return {
        env_to_config_name(variable): env[variable]
        for variable in sorted(env)
        if is_config_variable(variable)
    }
