"""Run `natlink demo --json` several times and print each link's measured time (median, p90, max) and the
whole run's wall time, as a user would see it (a fresh `python -m natlink` process each time).

    sudo python bench/demo_bench.py [-n RUNS] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--config", help="run the demo with this natlink config")
    args = parser.parse_args()
    argv = [sys.executable, "-m", "natlink", "--json", "demo"] + (["--config", args.config] if args.config else [])
    per_step: dict[str, list[float]] = {}
    walls: list[float] = []
    failures = 0
    for i in range(args.runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        walls.append(time.perf_counter() - t0)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            print(f"run {i + 1}: no JSON (exit {proc.returncode}): {proc.stderr.strip()[:200]}", file=sys.stderr)
            failures += 1
            continue
        if not doc["ok"]:
            failures += 1
            bad = [f"{s['key']}: {s['detail'][:120]}" for s in doc["steps"] if not s["ok"]]
            print(f"run {i + 1}: exit {doc['exit_code']}: {'; '.join(bad)}", file=sys.stderr)
        for s in doc["steps"]:  # durations in the JSON are seconds (floats)
            if s["elapsed"] is not None and s["status"] != "skipped":
                per_step.setdefault(s["key"], []).append(s["elapsed"] * 1000)
            for k in ("ready", "service_saw", "after_router_up"):
                if isinstance(s.get(k), (int, float)):
                    per_step.setdefault(f"  {s['key']} {k}", []).append(s[k] * 1000)
            for item in s.get("dns", []) + s.get("connects", []):
                what = item.get("hostname") or f"connect {item.get('external_port')}"
                per_step.setdefault(f"  {s['key']} {what}", []).append(item["elapsed"] * 1000)
        per_step.setdefault("total (reported)", []).append(doc["total"] * 1000)
    print(f"natlink demo{' --config ' + args.config if args.config else ''}: {args.runs} runs, {failures} failed")
    print(f"{'link':<36}{'median':>10}{'p90':>10}{'max':>10}   (ms)")
    for key, values in per_step.items():
        print(f"{key:<36}{statistics.median(values):>10.1f}{pct(values, 0.9):>10.1f}{max(values):>10.1f}")
    wall_ms = [w * 1000 for w in walls]
    print(f"{'wall time incl. python start-up':<36}{statistics.median(wall_ms):>10.1f}{pct(wall_ms, 0.9):>10.1f}"
          f"{max(wall_ms):>10.1f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
