"""``load_config``: the broker's startup configuration, as ``kafka-server-start.sh`` builds it.

Precedence, lowest first: defaults, the properties file, ``KAFKA_*`` environment variables (the
Docker convention appends them to server.properties), ``--override key=value`` entries (later
ones win). Without a file Brook runs on its embedded default: ``PLAINTEXT://localhost:9092`` with
data in ``./data`` (see :data:`model.EMBEDDED_DEFAULTS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .environment import config_from_environment
from .model import BrokerConfig
from .properties import parse_overrides, read_properties


def load_config(
    path: Path | str | None,
    overrides: Iterable[str] | None = (),
    *,
    environment: Mapping[str, str] | None = None,
) -> BrokerConfig:
    """Read ``path`` (a Java properties file, or None for the embedded default), apply the
    ``KAFKA_*`` variables of ``environment`` (not read implicitly: pass ``os.environ`` to opt in)
    and the ``overrides``; validate. Raises :class:`ConfigError`; unknown keys are logged."""
    static: dict[str, str] = {}
    if path is not None:
        static.update(read_properties(Path(path)))
    if environment is not None:
        static.update(config_from_environment(environment))
    static.update(parse_overrides(overrides or ()))
    return BrokerConfig(static, embedded_defaults=path is None)
