"""The floors under portmap_bench.py's figures that are not natlink's: this machine's Python start-up
(split into the interpreter and the environment's site-packages .pth files) and miniupnpd's own time.

- A venv with no .pth of its own beyond one that puts the same site-packages directory on sys.path: the same
  interpreter, natlink and libraries, but site.py does not run the directory's .pth files (here: a sandbox's
  `_sandboxing_egress_ca.pth` that imports certifi in every Python process, the editable-install finder and
  setuptools' distutils hack). Nothing is faked: the same commands run under both interpreters.
- miniupnpd: how long it holds an SSDP answer (2.3.x: a fixed 50 ms for every M-SEARCH, unicast or multicast,
  whatever MX says, unless built with DELAY_MSEARCH_RESPONSE); how far apart its answers to 20 NAT-PMP
  re-requests sent at once come (its own work per request: it deletes and re-adds the nft rules, and its
  port-in-use check reads /proc/net/tcp); and how long that read takes in the router's namespace (the kernel
  walks the whole machine's TCP hash table for it, so it grows with every socket on the host).
"""

from __future__ import annotations

import site
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROC_TCP = """
import statistics, time
r = []
for _ in range(30):
    t0 = time.perf_counter()
    with open("/proc/net/tcp", "rb") as f:
        f.read()
    r.append(time.perf_counter() - t0)
print(statistics.median(r), min(r))
"""


def clean_venv(directory: Path, repo: Path) -> str:
    """A venv whose only .pth adds the repo and this interpreter's site-packages to sys.path (see the module
    docstring); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                            capture_output=True, text=True).stdout.strip()
    Path(target, "natlink-bench-paths.pth").write_text("\n".join([str(repo), *site.getsitepackages()]) + "\n")
    return str(python)


def ssdp_hold(gateway: str, runs: int) -> list[float]:
    """Seconds from a unicast M-SEARCH to the gateway until its answer (MX: 1), ``runs`` times."""
    out = []
    for _ in range(runs):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            query = (f"M-SEARCH * HTTP/1.1\r\nHOST: {gateway}:1900\r\nST: urn:schemas-upnp-org:device:"
                     "InternetGatewayDevice:1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n").encode()
            t0 = time.perf_counter()
            sock.sendto(query, (gateway, 1900))
            sock.recv(2048)
            out.append(time.perf_counter() - t0)
    return out


def natpmp_spacing(gateway: str, ports: list[tuple[int, int]]) -> float:
    """Median gap between miniupnpd's answers to NAT-PMP map requests for ``ports`` (external, internal) sent
    all at once: with the requests queued at the router, the gap is its own time per request."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((gateway, 5351))
        sock.settimeout(3)
        for external, internal in ports:
            sock.send(struct.pack("!BBHHHI", 0, 2, 0, internal, external, 3600))
        arrived = []
        for _ in ports:
            sock.recv(64)
            arrived.append(time.perf_counter())
    return statistics.median(b - a for a, b in zip(arrived, arrived[1:]))


def proc_net_tcp(lab: Any) -> tuple[float, float]:
    """(median, min) seconds to read /proc/net/tcp inside the router's namespace."""
    out = lab.run("rtr", [sys.executable, "-c", PROC_TCP]).stdout.split()
    return float(out[0]), float(out[1])
