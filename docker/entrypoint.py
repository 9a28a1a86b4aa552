"""Entry point of Brook's container image (PID 1).

    brook-entrypoint [server.properties] [--override key=value ...] [KAFKA_KEY=value ...]
    brook-entrypoint healthcheck

Configuration, lowest precedence first:

1. Kafka's defaults (not Brook's embedded ``localhost`` defaults);
2. container defaults: ``listeners=PLAINTEXT://0.0.0.0:9092`` (so ``localhost:9092`` is advertised)
   and ``log.dirs=/var/lib/brook/data`` (the image's volume), each only when nothing sets it;
3. a properties file: the path given as argument, else ``/mnt/shared/config/server.properties``
   when mounted (the path Apache Kafka's image reads);
4. ``KAFKA_*`` environment variables in the convention of Kafka's official image
   (``KAFKA_LOG_RETENTION_HOURS=72`` -> ``log.retention.hours=72``, ``__`` -> ``_``, ``___`` -> ``-``),
   including ``KAFKA_KEY=value`` arguments, which Kafka's image also treats as variables;
5. ``--override key=value`` arguments.

Like Kafka's image, ``listeners`` is derived from ``advertised.listeners`` when only the latter is
set (every host becomes ``0.0.0.0``, ports kept). Unlike Kafka's image, which then overrides a
mounted file's ``listeners`` too, Brook derives it only when nothing sets ``listeners``.

Compose files written for ``apache/kafka`` run a single combined KRaft node
(``KAFKA_PROCESS_ROLES=broker,controller`` with one voter, itself). Brook has no KRaft; such a node is
exactly Brook's standalone mode, so the KRaft keys are dropped with a warning: ``process.roles``,
``controller.quorum.voters``/``controller.quorum.bootstrap.servers``, ``controller.listener.names``
and the controller listeners themselves. A KRaft quorum of several nodes, a controller-only node or a
broker-only node are refused with a clear message: they need Brook's cluster mode (ZooKeeper).

TLS: the ``ssl.*`` keys as ``KAFKA_SSL_*`` variables with key files mounted anywhere, or apache/kafka's
convention: ``KAFKA_SSL_KEYSTORE_FILENAME``, ``KAFKA_SSL_TRUSTSTORE_FILENAME`` and the password files
``KAFKA_SSL_KEY_CREDENTIALS``, ``KAFKA_SSL_KEYSTORE_CREDENTIALS``, ``KAFKA_SSL_TRUSTSTORE_CREDENTIALS``,
all under ``/etc/kafka/secrets`` (``BROOK_SECRETS_DIR`` moves it).

Logging: ``BROOK_LOG_LEVEL``, else ``KAFKA_LOG4J_ROOT_LOGLEVEL`` (as Kafka's image), else INFO.

SIGTERM (``docker stop``) stops the broker gracefully: in-flight requests finish, logs are flushed and
the clean-shutdown marker ``.kafka_cleanshutdown`` is written in every log dir. Before the broker is
serving (config, log recovery), SIGTERM ends the process at once, as a crash would.

``healthcheck`` sends a real ApiVersions request (:func:`broker.healthcheck.check`) to the first
listener the running broker was started with (recorded at start in :data:`TARGET_FILE`; recomputed
from the environment and the mounted file when that could not be written); exit 0 when answered.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker.config import BrokerConfig, ConfigError, config_from_environment, read_properties
from broker.config.environment import PREFIX, env_to_config_name, is_config_variable

DATA_DIR = "/var/lib/brook/data"
MOUNTED_PROPERTIES = Path("/mnt/shared/config/server.properties")
DEFAULT_LISTENERS = "PLAINTEXT://0.0.0.0:9092"
#: Where apache/kafka's image expects mounted key stores and password files.
SECRETS_DIR = Path(os.environ.get("BROOK_SECRETS_DIR", "/etc/kafka/secrets"))
SECRET_VARIABLES = {
    "KAFKA_SSL_KEYSTORE_FILENAME": ("ssl.keystore.location", False),
    "KAFKA_SSL_TRUSTSTORE_FILENAME": ("ssl.truststore.location", False),
    "KAFKA_SSL_KEY_CREDENTIALS": ("ssl.key.password", True),
    "KAFKA_SSL_KEYSTORE_CREDENTIALS": ("ssl.keystore.password", True),
    "KAFKA_SSL_TRUSTSTORE_CREDENTIALS": ("ssl.truststore.password", True),
}
TARGET_FILE = Path(os.environ.get("BROOK_HEALTHCHECK_TARGET_FILE", "/tmp/brook-healthcheck-target"))
KRAFT_KEYS = (
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
)
_LOG4J_LEVELS = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL", "OFF": "CRITICAL"}
_ASSIGNMENT = re.compile(r"KAFKA_[A-Za-z0-9_]+=.*", re.DOTALL)

log = logging.getLogger("brook.entrypoint")


class UsageError(Exception):
    """Bad command-line arguments."""


@dataclass
class Arguments:
    properties: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """``[server.properties] [--override k=v | --override=k=v | KAFKA_K=v]...``"""
    args = Arguments()
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == "--override" or item.startswith("--override="):
            entry = (
                item.partition("=")[2] if item.startswith("--override=") else (items.pop(0) if items else "")
            )
            key, sep, value = entry.partition("=")
            if not key or not sep:
                raise UsageError(f"--override expects key=value, got {entry!r}")
            args.overrides[key] = value
        elif _ASSIGNMENT.fullmatch(item):
            name, _, value = item.partition("=")
            args.variables[name] = value
        elif item.startswith("-"):
            raise UsageError(f"unknown option {item!r}")
        elif args.properties is None:
            args.properties = Path(item)
        else:
            raise UsageError(f"unexpected argument {item!r} (one properties file at most)")
    return args


def derive_listeners(advertised: str) -> str:
    """Kafka's image: ``sed -e 's|://[^:]*:|://0.0.0.0:|g'`` on ``KAFKA_ADVERTISED_LISTENERS``."""
    return re.sub(r"://[^:]*:", "://0.0.0.0:", advertised)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _drop_kraft(static: dict[str, str], notes: list[str]) -> None:
    """Turn a single combined KRaft node into Brook's standalone mode, or refuse (see module doc)."""
    roles = [role.lower() for role in _split(static.get("process.roles", ""))]
    if not any(key in static for key in KRAFT_KEYS):
        return
    if roles and "broker" not in roles:
        raise ConfigError(
            f"process.roles={static['process.roles']}: a KRaft controller-only node has no Brook "
            "equivalent (Brook has no KRaft; run one Brook broker in its place)",
            name="process.roles",
        )
    if roles and "controller" not in roles:
        raise ConfigError(
            "process.roles=broker: a broker of a separate KRaft controller quorum; Brook has no KRaft. "
            "Run Brook standalone (no process.roles), or in cluster mode with zookeeper.connect",
            name="process.roles",
        )
    voters = _split(static.get("controller.quorum.voters", "")) or _split(
        static.get("controller.quorum.bootstrap.servers", "")
    )
    if len(voters) > 1:
        raise ConfigError(
            f"a KRaft quorum of {len(voters)} controllers ({', '.join(voters)}): Brook has no KRaft; "
            "its cluster mode uses ZooKeeper (zookeeper.connect). A single combined node "
            "(process.roles=broker,controller with one voter) runs as a standalone Brook broker",
            name="controller.quorum.voters",
        )
    node_id = static.get("node.id", static.get("broker.id"))
    if voters and "@" in voters[0] and node_id is not None:
        voter_id = voters[0].partition("@")[0].strip()
        if voter_id != node_id.strip():
            raise ConfigError(
                f"controller.quorum.voters={voters[0]} names node {voter_id}, not this node "
                f"({node_id}): a broker of another node's KRaft quorum; Brook has no KRaft",
                name="controller.quorum.voters",
            )
    controller_names = {name.upper() for name in _split(static.get("controller.listener.names", ""))}
    dropped = [f"{key}={static.pop(key)}" for key in KRAFT_KEYS if key in static]
    if controller_names and "listeners" in static:
        kept, removed = [], []
        for entry in _split(static["listeners"]):
            name = entry.partition("://")[0].strip().upper()
            (removed if name in controller_names else kept).append(entry)
        if removed:
            static["listeners"] = ",".join(kept)
            dropped.append(f"controller listener(s) {','.join(removed)}")
    notes.append(
        "single-node KRaft settings found: Brook runs this node standalone (no KRaft) and ignores "
        + "; ".join(dropped)
    )


def container_static(
    env: Mapping[str, str],
    properties: Mapping[str, str] | None = None,
    arguments: Arguments | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The static broker configs of a container (see module doc) and notes worth logging."""
    arguments = arguments or Arguments()
    notes: list[str] = []
    static: dict[str, str] = dict(properties or {})
    variables = {**env, **arguments.variables}
    static.update(config_from_environment(variables))
    _kafka_image_secrets(variables, static, notes)
    static.update(arguments.overrides)
    if "listeners" not in static:
        if "advertised.listeners" in static:
            static["listeners"] = derive_listeners(static["advertised.listeners"])
            notes.append(f"listeners={static['listeners']} derived from advertised.listeners")
        else:
            static["listeners"] = DEFAULT_LISTENERS
    if "log.dirs" not in static and "log.dir" not in static:
        static["log.dirs"] = DATA_DIR
    _drop_kraft(static, notes)
    return static, notes


def _kafka_image_secrets(variables: Mapping[str, str], static: dict[str, str], notes: list[str]) -> None:
    """apache/kafka's image names TLS key material by file name under /etc/kafka/secrets:
    ``KAFKA_SSL_KEYSTORE_FILENAME`` and ``KAFKA_SSL_TRUSTSTORE_FILENAME`` become the locations,
    the ``*_CREDENTIALS`` files hold the passwords (read as the image's ``$(cat file)`` does)."""
    for variable, (key, is_password) in SECRET_VARIABLES.items():
        value = variables.get(variable)
        static.pop(env_to_config_name(variable), None)  # not a broker config of its own
        if not value:
            continue
        path = SECRETS_DIR / value
        if is_password:
            static[key] = path.read_text(encoding="utf-8").rstrip("\n")
        else:
            static[key] = str(path)
        notes.append(f"{key} taken from {variable} ({path})")


def _read_file(arguments: Arguments) -> dict[str, str]:
    path = arguments.properties
    if path is None and MOUNTED_PROPERTIES.is_file():
        path = MOUNTED_PROPERTIES
    if path is None:
        return {}
    log.info("reading %s", path)
    return read_properties(path)


def load(env: Mapping[str, str], arguments: Arguments) -> tuple[BrokerConfig, list[str]]:
    static, notes = container_static(env, _read_file(arguments), arguments)
    return BrokerConfig(static, embedded_defaults=False), notes


def healthcheck_target(config: BrokerConfig) -> tuple[str, int]:
    """Where a check inside the container reaches the broker: its first PLAINTEXT listener (else
    its first listener), on loopback when that listener binds every interface."""
    plaintext = [listener for listener in config.listeners if listener.security_protocol == "PLAINTEXT"]
    first = (plaintext or config.listeners)[0]
    host = first.host if first.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return host, first.port


def _setup_logging(env: Mapping[str, str]) -> None:
    level = env.get("BROOK_LOG_LEVEL") or env.get("KAFKA_LOG4J_ROOT_LOGLEVEL") or "INFO"
    level = level.strip().upper()
    level = _LOG4J_LEVELS.get(level, level)
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _stop_now(signum: int, _frame: object) -> None:
    # Before the broker's own handlers are installed (config, log recovery): PID 1 ignores SIGTERM
    # unless it handles it, so leave now; nothing has been served, and recovery copes with a stop here.
    raise SystemExit(128 + signum)


def serve(argv: Sequence[str], env: Mapping[str, str]) -> int:
    signal.signal(signal.SIGTERM, _stop_now)
    _setup_logging(env)
    try:
        arguments = parse_arguments(argv)
        config, notes = load(env, arguments)
    except UsageError as exc:
        print(f"brook: {exc}\n{__doc__.splitlines()[2].strip()}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"brook: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"brook: cannot read configuration: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        log.warning("%s", note)
    ignored = sorted(name for name in env if name.startswith(PREFIX) and not is_config_variable(name))
    if ignored:
        log.info("not broker configs, ignored: %s", ", ".join(ignored))
    host, port = healthcheck_target(config)
    try:
        TARGET_FILE.write_text(f"{host}:{port}\n")
    except OSError as exc:  # read-only root file system: the check recomputes the target
        log.info("cannot record the health-check target in %s: %s", TARGET_FILE, exc)
    from broker.__main__ import run

    return run(config)


def healthcheck(env: Mapping[str, str]) -> int:
    from broker.healthcheck import check

    try:
        host, _, port = TARGET_FILE.read_text().strip().rpartition(":")
        target = (host, int(port))
    except (OSError, ValueError):
        logging.disable(logging.WARNING)
        try:
            target = healthcheck_target(load(env, Arguments())[0])
        except (ConfigError, OSError):
            target = ("127.0.0.1", 9092)
    return 0 if check(*target, timeout=3.0) else 1


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    if list(argv[:1]) == ["healthcheck"]:
        return healthcheck(env)
    return serve(argv, env)


if __name__ == "__main__":
    sys.exit(main())
