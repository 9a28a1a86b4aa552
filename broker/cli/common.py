"""What every ``brook`` subcommand shares: the connection options, client properties and tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from broker.cli.client import CliError, KafkaClient

#: Client properties that need TLS or SASL, which Brook's client does not speak yet (issue 15).
_SECURE_PREFIXES = ("ssl.", "sasl.")
_PLAIN_PROTOCOLS = {"PLAINTEXT"}


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


def check_client_properties(props: dict[str, str]) -> None:
    """Refuse, loudly, the settings this client cannot honour (TLS, SASL)."""
    protocol = props.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in _PLAIN_PROTOCOLS:
        raise CliError(
            f"security.protocol={protocol} is not supported by the brook command line yet "
            "(TLS and SASL arrive with issue 15); only PLAINTEXT is."
        )
    secure = sorted(k for k in props if k.startswith(_SECURE_PREFIXES))
    if secure:
        raise CliError(
            "TLS/SASL client settings are not supported by the brook command line yet (issue 15): "
            + ", ".join(secure)
        )


def client_from(args: argparse.Namespace, extra: dict[str, str] | None = None) -> KafkaClient:
    props = read_properties(args.command_config) if getattr(args, "command_config", None) else {}
    props.update(extra or {})
    check_client_properties(props)
    timeout = float(props.get("request.timeout.ms", "30000")) / 1000
    return KafkaClient(args.bootstrap_server, timeout=timeout, client_id=props.get("client.id", "brook-cli"))


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
