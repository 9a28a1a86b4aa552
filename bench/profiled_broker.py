"""``python -m broker`` under cProfile with a CPU-time clock (wall time would count the waits for a
CPU on a loaded machine as the functions' own); the profile is written at a clean exit.

    python bench/profiled_broker.py OUT.prof [broker arguments...]
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["broker", *sys.argv[2:]]
    profile = cProfile.Profile(time.process_time)
    try:
        profile.runcall(runpy.run_module, "broker", run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
