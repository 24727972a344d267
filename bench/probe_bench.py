"""Probe speed in the lab: N targets concurrently vs one, and what a timeout verdict costs.

    sudo python bench/probe_bench.py [--rounds 5]

Targets: 20 mappings (external 4000+i -> internal 5000+i on the LAN host, nothing listening, so natlink
listens itself and every verdict is `verified`), a reflector on the WAN host, probe_all run in the LAN
namespace. Targets: 20 concurrently within 1.2x of one; a timeout verdict within the configured timeout; with no
router answering (NAT-PMP asked at a LAN host that swallows it, router.timeout = 2 s) a verified target costs no
router wait. bench/probe_floor.py measures what the same dial-backs cost this lab with no natlink code at all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from natlink.config import load_config
from natlink.lab import Lab, probes
from natlink.probe.prober import probe_all


SILENT_GATEWAY = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5351))\n"
                  "while True: s.recv(2048)")


def config(lab: Lab, n: int, timeout: float, blocked: bool = False, silent_router: bool = False) -> str:
    router = (f'gateway = "{lab.lan2_ip}"\nprotocols = ["natpmp"]\ntimeout = 2\n' if silent_router
              else f'igd_url = "{lab.igd_url}"\n')
    parts = [f'[router]\n{router}lan_ip = "{lab.lan_ip}"\n[public_ip]\nsources = ["router"]\n'
             f'[service]\nstate_dir = "{lab.workdir}/state"\n']
    for i in range(n):
        parts.append(f'[[mapping]]\nname = "m{i}"\nprotocol = "tcp"\nexternal_port = {4000 + i}\n'
                     f'internal_port = {5000 + i}\n[[probe]]\nmapping = "m{i}"\nreflector = "http://{lab.wan_host_ip}:8765"\n'
                     f'timeout = {timeout}\n')
    path = os.path.join(lab.workdir, f"bench-{n}-{timeout}-{blocked}-{silent_router}.toml")
    with open(path, "w") as fh:
        fh.write("".join(parts))
    return path


def timed(lab: Lab, cfg_path: str) -> tuple[float, list[str]]:
    cfg = load_config(cfg_path)
    t0 = time.perf_counter()
    results = lab.call("lan", probe_all, cfg)
    return time.perf_counter() - t0, [r.verdict.value for r in results]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--targets", type=int, default=20)
    args = ap.parse_args()
    with Lab() as lab:
        lab.popen("wan", [sys.executable, "-m", "natlink", "reflector", "--listen", f"{lab.wan_host_ip}:8765",
                          "--rate", "0", "--insecure-http"], stderr=open(os.devnull, "w"))
        while True:
            try:
                if lab.call("wan", probes.http_get_status, lab.wan_host_ip, 8765, "/v1/health") == 200:
                    break
            except OSError:
                time.sleep(0.05)
        for i in range(args.targets):
            lab.run("lan", ["upnpc", "-u", lab.igd_url, "-e", f"natlink:m{i}", "-a", lab.lan_ip, str(5000 + i),
                            str(4000 + i), "TCP"])
        one, many = config(lab, 1, 3.0), config(lab, args.targets, 3.0)
        timed(lab, one)  # warm-up (imports, ARP)
        t1, tn = [], []
        for _ in range(args.rounds):
            d, v1 = timed(lab, one)
            t1.append(d)
            d, vn = timed(lab, many)
            tn.append(d)
        m1, mn = statistics.median(t1), statistics.median(tn)
        print(f"1 target:   median {m1 * 1000:7.1f} ms  (min {min(t1) * 1000:.1f}, max {max(t1) * 1000:.1f}) verdicts {set(v1)}")
        print(f"{args.targets} targets: median {mn * 1000:7.1f} ms  (min {min(tn) * 1000:.1f}, max {max(tn) * 1000:.1f}) "
              f"verdicts {set(vn)}")
        print(f"ratio {args.targets}/1: {mn / m1:.2f}x  (target <= 1.2x)")
        lab.popen("lan2", [sys.executable, "-c", SILENT_GATEWAY])
        time.sleep(0.5)  # bound before the first ask: an unbound port would refuse (ICMP) and end the router look
        silent = [timed(lab, config(lab, 1, 3.0, silent_router=True)) for _ in range(3)]
        print(f"1 target, no router answers (router.timeout = 2 s): median {statistics.median(d for d, _ in silent):.3f} s "
              f"wall, verdicts {set(v for _, vs in silent for v in vs)}")
        lab.blocked_port(4000)
        single: dict[float, float] = {}
        for timeout in (1.0, 3.0):
            d, v = timed(lab, config(lab, 1, timeout, blocked=True))
            single[timeout] = d
            print(f"timeout verdict with timeout = {timeout:g} s: {d:.3f} s wall ({v[0]}; target <= {timeout:g} s)")
        # Where concurrency matters: N filtered ports cost one timeout, not N.
        for i in range(1, args.targets):
            lab.blocked_port(4000 + i)
        d, v = timed(lab, config(lab, args.targets, 1.0, blocked=True))
        print(f"{args.targets} filtered targets, timeout = 1 s: {d:.3f} s wall ({set(v)}); "
              f"{d / single[1.0]:.2f}x one filtered target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
