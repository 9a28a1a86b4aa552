"""What one acks=all replication round costs the leader (in process, CPU time: the machine's other
load does not enter). Prints figures, asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/bench_replication_round.py [--rounds 2000] [--repeat 5]

One leader (the unit tests' kit: a fake controller, a follower played by Fetch requests, the ISR
leader + follower, ``min.insync.replicas=2``). One round is what the leader does for one message
sent with ``linger.ms=0`` and acks=all when nothing batches: the produce (append, then a delayed
produce), the follower's fetch that carries the record away, and its next fetch, which moves the
high watermark and answers the produce. Each round's follower fetches and the produce response
are encoded as the network layer would. Printed: the median over ``repeat`` runs of CPU
microseconds per round, and the same for a follower fetch at the log end (an idle partition of a
fetch session, which every fetch reads again).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from protocol import api as papi  # noqa: E402
from tests.broker.control_kit import LOCAL, OTHER  # noqa: E402
from tests.broker.test_leader_replication import acall, follower_fetch, leader, produce_request, settle  # noqa: E402


def encoded(api_key: int, version: int, body: object) -> None:
    papi.encode_response_parts(api_key, version, 1, body)  # type: ignore[arg-type]


async def per_round(tmp: Path, rounds: int) -> tuple[float, float]:
    async with leader(tmp, [LOCAL, OTHER], min_insync=2) as (broker, _partition, _):
        await settle(await acall(broker, follower_fetch(0), 15))
        started = time.process_time()
        for offset in range(rounds):
            pending = await acall(broker, produce_request([b"x" * 100]), 9)
            encoded(1, 15, await settle(await acall(broker, follower_fetch(offset), 15)))
            encoded(1, 15, await settle(await acall(broker, follower_fetch(offset + 1), 15)))
            encoded(0, 9, await settle(pending))
        spent_round = time.process_time() - started
        started = time.process_time()
        for _ in range(rounds):
            encoded(1, 15, await settle(await acall(broker, follower_fetch(rounds), 15)))
        spent_idle = time.process_time() - started
        return spent_round / rounds * 1e6, spent_idle / rounds * 1e6


def main(args: argparse.Namespace) -> None:
    rounds: list[float] = []
    idle: list[float] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            per, at_end = asyncio.run(per_round(Path(tmp), args.rounds))
        rounds.append(per)
        idle.append(at_end)
    print(
        f"one leader, one follower, acks=all, {args.rounds} rounds x {args.repeat}: "
        f"{statistics.median(rounds):.1f} us CPU per round (produce + 2 follower fetches), "
        f"{statistics.median(idle):.1f} us per follower fetch at the log end "
        f"(runs: {', '.join(f'{r:.0f}' for r in rounds)} / {', '.join(f'{r:.0f}' for r in idle)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args())
