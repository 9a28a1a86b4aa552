"""What every ``brook`` subcommand shares: the connection options, client properties and tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from broker.cli.client import CliError, KafkaClient


def add_connection_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--bootstrap-server",
        required=required,
        metavar="<String: server to connect to>",
        help="REQUIRED: The Kafka server(s) to connect to, host:port[,host:port...].",
    )
    parser.add_argument(
        "--command-config",
        metavar="<String: command config property file>",
        help="Property file with client configs (security.protocol, ...).",
    )


def read_properties(path: str) -> dict[str, str]:
    """A Java properties file's key=value (or key: value) lines; # and ! start comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Could not read the command config {path}: {exc.strerror}") from exc
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, value = _split_property(line)
        props[key] = value
    return props


def _split_property(line: str) -> tuple[str, str]:
    cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
    if cut < 0:
        return line, ""
    return line[:cut].strip(), line[cut + 1 :].strip()


def parse_key_values(entries: Sequence[str]) -> dict[str, str]:
    """``k=v`` items (each possibly several joined by commas) into a dict."""
    result: dict[str, str] = {}
    for entry in entries:
        for item in entry.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise CliError(f"Invalid property '{item}': expected key=value")
            result[key.strip()] = value.strip()
    return result


def client_from(args: argparse.Namespace, extra: dict[str, str] | None = None) -> KafkaClient:
    """A client from ``--bootstrap-server`` and the ``--command-config`` properties, with TLS
    and SASL as ``security.protocol`` asks (:mod:`broker.cli.security`)."""
    from broker.cli.security import security_from

    props = read_properties(args.command_config) if getattr(args, "command_config", None) else {}
    props.update(extra or {})
    security = security_from(props)
    timeout = float(props.get("request.timeout.ms", "30000")) / 1000
    return KafkaClient(
        args.bootstrap_server,
        timeout=timeout,
        client_id=props.get("client.id", "brook-cli"),
        security=None if security.protocol == "PLAINTEXT" else security,
    )


def pretty_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Kafka's ToolsUtils.prettyPrintTable: each cell padded to its column's width, then a tab."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "".join(cell.ljust(w) + "\t" for cell, w in zip(line, widths, strict=True))
        for line in [headers, *rows]
    ]
    return "\n".join(lines) + "\n"


def progress(message: str) -> None:
    """Progress of a long operation goes to stderr, so stdout stays the tool's output."""
    print(message, file=sys.stderr, flush=True)
