"""Regenerate ``protocol/messages`` from the schemas, or check that it is up to date.

    python -m protocol.codegen [--schemas ../shared/kafka-protocol] [--out protocol/messages] [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocol.codegen.generate import generate, write_or_check

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.codegen", description=__doc__)
    parser.add_argument("--schemas", type=Path, default=REPO.parent / "shared" / "kafka-protocol")
    parser.add_argument("--out", type=Path, default=REPO / "protocol" / "messages")
    parser.add_argument("--check", action="store_true", help="fail if the committed modules differ")
    args = parser.parse_args(argv)
    files = generate(args.schemas)
    problems = write_or_check(files, args.out, check=args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not args.check:
        print(f"wrote {len(files)} modules to {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
