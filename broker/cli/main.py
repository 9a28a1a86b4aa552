"""``brook``: the entry point of the command line (``[project.scripts] brook``).

Each subcommand module adds its parser and a ``run(args) -> int``. A :class:`CliError` is printed
the way the Kafka tool it mirrors prints its errors, and the exit code is 1; a bad command line
exits 2 as argparse does (Kafka's tools exit 1 there too, after the usage).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from broker.cli import (
    acls,
    cluster,
    configs,
    console_consumer,
    console_producer,
    groups,
    reassign,
    topics,
    transactions,
)
from broker.cli.client import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brook", description="Kafka's command line tools, for Brook and any Kafka-compatible cluster."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        topics,
        groups,
        configs,
        console_producer,
        console_consumer,
        cluster,
        transactions,
        acls,
        reassign,
    ):
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    args.argv = arguments
    try:
        code: int = args.run(args)
    except CliError as exc:
        stream = sys.stdout if getattr(args, "error_stream", "stderr") == "stdout" else sys.stderr
        print(f"{getattr(args, 'error_prefix', 'Error: ')}{exc}", file=stream, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
