"""How long `natlink doctor` takes in the lab (target: under 2 s without --measure-nat-timeout).

    sudo python bench/doctor_bench.py [--runs 5] [--measure]

Prints per-run wall time of the whole CLI (process start included) and the doctor's own per-check elapsed
times from --json, for the healthy normal lab and the CGNAT lab. --measure also times one NAT idle-timeout
measurement with the router's conntrack timeout set to 20 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))

from doctor_setup import doctor, healthy_lab, start_reflector, write_config  # noqa: E402

from natlink.lab import Lab  # noqa: E402


def _report(label: str, runs: list) -> None:
    walls = [r.elapsed for r in runs]
    inner = [r.doc.get("elapsed", 0.0) for r in runs]
    print(f"{label}: wall {statistics.median(walls):.3f} s median (min {min(walls):.3f}, max {max(walls):.3f}); "
          f"doctor itself {statistics.median(inner):.3f} s median; exit {runs[-1].code}")
    slowest = sorted(runs[-1].doc["checks"], key=lambda c: -c["elapsed"])[:5]
    for c in slowest:
        print(f"    {c['elapsed'] * 1000:7.1f} ms  link {c['link']} {c['check']} {c['subject'] or ''}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--measure", action="store_true")
    args = parser.parse_args()
    with Lab("normal") as lab:
        config = healthy_lab(lab)
        _report("normal (healthy)", [doctor(lab, config, "--no-hairpin") for _ in range(args.runs)])
        _report("normal + hairpin", [doctor(lab, config) for _ in range(args.runs)])
        if args.measure:
            lab.set_conntrack_timeout(20, loose=False)
            run = doctor(lab, config, "--measure-nat-timeout", "--max", "60", timeout=180)
            m = run.doc["nat_timeout"]
            print(f"NAT idle timeout (conntrack 20 s): estimate {m['estimate']} s, alive after {m['alive_max']:.1f} s, "
                  f"gone after {m['dead_min']:.1f} s, keepalive recommended {m['recommended_keepalive']} s; "
                  f"measurement {m['elapsed']} s, whole run {run.elapsed:.1f} s")
    with Lab("cgnat", lan2=False) as lab:
        lab.tcp_service("lan", 3389)
        start_reflector(lab)
        config = write_config(lab)
        _report("cgnat", [doctor(lab, config) for _ in range(args.runs)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
