"""Measure how long the lab takes to start (until every daemon answers) and to tear down.

    sudo python bench/lab_startup.py [-n RUNS] [--scenario normal|cgnat|double-nat] [--no-knot]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from natlink.lab import Lab, check_prerequisites  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--scenario", default="normal")
    parser.add_argument("--no-knot", action="store_true")
    args = parser.parse_args()
    problems = check_prerequisites()
    if problems:
        print("lab unavailable: " + "; ".join(problems), file=sys.stderr)
        return 1
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(args.runs):
        lab = Lab(args.scenario, knot=not args.no_knot)
        t0 = time.perf_counter()
        try:
            lab.start()
            starts.append(time.perf_counter() - t0)
        finally:
            t1 = time.perf_counter()
            lab.stop()
            stops.append(time.perf_counter() - t1)
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f}"  # noqa: E731
    print(f"lab {args.scenario} ({args.runs} runs): start-up {ms(starts)}; teardown {ms(stops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
