#!/usr/bin/env python3
"""systemd bench: the units under a real systemd 252 as PID 1 (the container of tests/lab/test_systemd_real.py):
time to a booted container (cached root file system or a fresh build), `systemctl start natlink` until READY,
`systemctl reload` (check-config + SIGHUP), `systemctl stop`, and `systemd-analyze security` for every unit, live
in the container and offline from the files.

    sudo python3 bench/systemd_bench.py [--rounds 5]

Prints figures; asserts nothing about speed. Needs root, systemd-container and debootstrap.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lab"))

import systemd_container as sc  # noqa: E402  (the test's container)
import test_systemd_real as real  # noqa: E402  (its stand-ins and drop-ins)

UNITS = ("natlink.service", "natlink-oneshot.service", "natlink-reflector.service")


def timed(c: sc.Container, *argv: str) -> float:
    started = time.monotonic()
    c.run(*argv)
    return time.monotonic() - started


def exposure(text: str) -> float | None:
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", text)
    return float(found.group(1)) if found else None


def summary(values: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3), "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    problems = sc.missing_tools()
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 1
    figures: dict[str, object] = {}
    started = time.monotonic()
    with sc.booted_container() as c:
        figures["container_ready_s"] = round(time.monotonic() - started, 1)
        figures["boot_s"] = round(c.boot_seconds, 2)
        real.prepare(c)
        starts, reloads, stops = [], [], []
        for _ in range(args.rounds):
            starts.append(timed(c, "systemctl", "start", "natlink"))  # Type=notify: returns at READY=1
            time.sleep(1)  # let the first jobs run, as in real life
            reloads.append(timed(c, "systemctl", "reload", "natlink"))
            stops.append(timed(c, "systemctl", "stop", "natlink"))
        figures["start_to_ready"] = summary(starts)
        figures["reload"] = summary(reloads)
        figures["stop"] = summary(stops)
        figures["exposure_live"] = {u: exposure(c.run("systemd-analyze", "security", "--no-pager", u).stdout)
                                    for u in UNITS}
    figures["exposure_offline"] = {
        u: exposure(subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                                    str(REPO / "systemd" / u)], capture_output=True, text=True).stdout)
        for u in UNITS}
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
