"""Start a broker: ``python -m broker [server.properties] [--override key=value ...]``.

Like ``kafka-server-start.sh``: with no file it runs the embedded default (PLAINTEXT on
localhost:9092, data in ./data). SIGTERM or SIGINT stops it gracefully.

Configuration, lowest precedence first (as Apache Kafka's Docker image layers it):

1. Kafka's defaults, or Brook's embedded defaults when no file is given;
2. the properties file;
3. ``KAFKA_*`` environment variables in the convention of Kafka's official image
   (``KAFKA_LOG_RETENTION_HOURS=72`` -> ``log.retention.hours=72``; ``__`` -> ``_``, ``___`` -> ``-``;
   see :mod:`broker.config.environment`); ``--no-env`` ignores them;
4. ``--override key=value`` (later ones win).

The container image's entry point (``docker/entrypoint.py``) adds container defaults below all of
these and calls :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from broker.config import BrokerConfig, ConfigError, load_config


class KafkaFormatter(logging.Formatter):
    """Kafka's log4j layout ``[%d] %p %m (%c)%n``: ``[2026-12-03 10:15:00,123] INFO message
    (logger.name)``, with log4j's level names (WARN, FATAL, TRACE)."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(levelname)s %(message)s (%(name)s)")

    def format(self, record: logging.LogRecord) -> str:
        from broker.loggers import level_name

        record.levelname = level_name(record.levelno)
        return super().format(record)


def _setup_logging() -> None:
    """The server's logging (only ``python -m broker``: an embedded broker leaves the host's
    logging alone). ``kafka.request.logger`` starts at WARN, as in Kafka's log4j.properties;
    BROKER_LOGGER alters switch it to DEBUG at run time."""
    level = os.environ.get("BROOK_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KafkaFormatter())
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler])
    logging.getLogger("kafka.request.logger").setLevel(logging.WARNING)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m broker", description="Brook, a Kafka-compatible broker.")
    parser.add_argument("config", nargs="?", type=Path, help="a server.properties file")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a property (repeatable; wins over the file and KAFKA_* variables)",
    )
    parser.add_argument(
        "--no-env",
        action="store_true",
        help="ignore KAFKA_* environment variables (by default they override the file)",
    )
    return parser.parse_args(argv)


async def _serve(config: BrokerConfig) -> int:
    from broker.app import Broker

    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("broker").info("shutting down")
    await broker.stop()
    return 0


def run(config: BrokerConfig) -> int:
    """Serve ``config`` until SIGTERM/SIGINT (on uvloop when installed); the exit status."""
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    from broker.cluster.meta_properties import MetaPropertiesError

    fatal: tuple[type[Exception], ...] = (MetaPropertiesError,)
    if not config.standalone:
        # ZooKeeper mode only: kazoo loads with these, never on the embedded node.
        from broker.cluster.zk.broker_id import BrokerIdConfigError
        from broker.cluster.zk.errors import BrokerIdInUseError, ZkError

        fatal += (ZkError, BrokerIdInUseError, BrokerIdConfigError)
    try:
        return runner(_serve(config))
    except OSError as exc:
        print(f"brook: {exc}", file=sys.stderr)
        return 1
    except fatal as exc:
        # ZooKeeper unreachable, a duplicate broker.id, another cluster's log dirs (Kafka's
        # "Fatal error during KafkaServer startup").
        logging.getLogger("broker").error("Fatal error during broker startup. Prepare to shutdown: %s", exc)
        print(f"brook: fatal error during startup: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config, args.override, environment=None if args.no_env else os.environ)
    except ConfigError as exc:
        print(f"brook: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"brook: cannot read configuration: {exc}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
