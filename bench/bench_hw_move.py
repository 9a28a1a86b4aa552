"""What one high-watermark move costs the leader while acks=all produces wait (in process, CPU
time: the machine's other load does not enter). Prints figures, asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/bench_hw_move.py [--backlog 10,100,1000] [--moves 200]

One leader (the unit tests' kit: a fake controller, a follower played by Fetch requests) with
``backlog`` acks=all produces waiting above the HW; then ``moves`` follower fetches each move the
HW past one more batch, answering one produce each. Printed per backlog: CPU microseconds per move.
A cost that grows with the backlog is a leader that slows down as it falls behind.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.broker.control_kit import LOCAL, OTHER  # noqa: E402
from tests.broker.test_leader_replication import acall, follower_fetch, leader, produce_request, settle  # noqa: E402


async def per_move(tmp: Path, backlog: int, moves: int) -> float:
    async with leader(tmp, [LOCAL, OTHER], min_insync=2) as (broker, _partition, _):
        waiting = [
            asyncio.ensure_future(settle(await acall(broker, produce_request([b"x"], timeout_ms=600_000), 9)))
            for _ in range(backlog + moves)
        ]
        await asyncio.sleep(0)
        await settle(await acall(broker, follower_fetch(0), 15))
        started = time.process_time()
        for offset in range(1, moves + 1):
            await settle(await acall(broker, follower_fetch(offset), 15))
        spent = time.process_time() - started
        await settle(await acall(broker, follower_fetch(backlog + moves), 15))
        await asyncio.gather(*waiting)
        return spent / moves * 1e6


def main(args: argparse.Namespace) -> None:
    print(f"one leader, one follower, {args.moves} HW moves of one batch each")
    for backlog in (int(b) for b in args.backlog.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            cost = asyncio.run(per_move(Path(tmp), backlog, args.moves))
        print(f"  {backlog:5d} acks=all produces waiting above the HW: {cost:7.1f} us CPU per move")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", default="10,100,1000")
    parser.add_argument("--moves", type=int, default=200)
    main(parser.parse_args())
