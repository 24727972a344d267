"""natlink's two UPnP engines side by side against the lab's miniupnpd, in one process, interleaved run by run:
natlink's own SOAP (upnp_igd.open_igd: the engine natlink uses) and the miniupnpc binding (upnp.UpnpClient:
the fallback for descriptions natlink's parser refuses).

    sudo python bench/upnp_engine_bench.py [-n RUNS]

Prints the median and minimum of each step: opening (the description GET and the service choice; one WAN
service, so nothing more is asked), GetExternalIPAddress, AddPortMapping, GetSpecificPortMappingEntry, the
table read, DeletePortMapping. Interleaving keeps the machine's load out of the comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from natlink.lab import Lab, check_prerequisites  # noqa: E402
from natlink.portmap.base import Mapping  # noqa: E402

STEPS = ("open", "external ip", "add", "get", "table", "delete")


def one_run(open_client: Callable[[], Any], want: Mapping) -> dict[str, float]:
    out: dict[str, float] = {}

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = fn()
        out[step] = time.perf_counter() - started
        return result

    client = timed("open", open_client)
    timed("external ip", client.external_ip)
    timed("add", lambda: client.add(want, 3600))
    assert timed("get", lambda: client.get("tcp", want.external_port)) is not None
    timed("table", client.list)
    timed("delete", lambda: client.delete(want))
    client.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=30)
    args = parser.parse_args()
    problems = check_prerequisites()
    if problems:
        print("lab unavailable: " + "; ".join(problems), file=sys.stderr)
        return 1
    with Lab("normal", knot=False) as lab:
        def bench() -> dict[str, dict[str, list[float]]]:
            from natlink.portmap.upnp import UpnpClient
            from natlink.portmap.upnp_igd import open_igd

            engines: dict[str, Callable[[], Any]] = {
                "natlink SOAP": lambda: open_igd([lab.igd_url], lab.lan_ip, 2, gateway=lab.gateway),
                "miniupnpc binding": lambda: UpnpClient(lab.igd_url, lab.lan_ip, 2)}
            want = Mapping("tcp", 3390, lab.lan_ip, 3389, "natlink:bench")
            times = {name: {step: [] for step in STEPS} for name in engines}
            for name, make in engines.items():  # warm-up: imports, first connections
                one_run(make, want)
            for _ in range(args.runs):
                for name, make in engines.items():
                    for step, value in one_run(make, want).items():
                        times[name][step].append(value)
            return times

        times = lab.call("lan", bench)
    print(f"natlink UPnP engines against the lab's miniupnpd ({args.runs} interleaved runs, median / min, ms)")
    print(f"  {'step':<14}" + "".join(f"{name:>26}" for name in times))
    for step in (*STEPS, "total"):
        cells = []
        for per_step in times.values():
            values = ([sum(v) for v in zip(*per_step.values())] if step == "total" else per_step[step])
            cells.append(f"{statistics.median(values) * 1000:>12.2f} / {min(values) * 1000:>8.2f}   ")
        print(f"  {step:<14}" + "".join(f"{c:>26}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
