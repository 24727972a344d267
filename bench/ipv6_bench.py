"""IPv6 speed in the lab: a pinhole in a cold process next to an IPv4 mapping, and a prefix change followed by
the service (netlink event → AAAA in knot + an outside IPv6 connect through the moved pinhole), and an IPv4
interface-source address change → the new A in knot.

    sudo python bench/ipv6_bench.py [-n RUNS]

Cold runs: a fresh `natlink map` process and state directory each time (SSDP/discovery included), the router
cleared between runs (`natlink unmap`, not timed). "IPv4 only" maps one port; "+ pinhole" maps the same port
and opens its IPv6 pinhole (UPnP or PCP), so the difference is what the pinhole costs. Prefix change: the lab
renumbers the LAN (alternating two /64s) while `natlink run` is up with every schedule at 10 minutes; the
time is from the renumbering until knot answers the new AAAA and a TCP connect from the WAN host to the new
address works.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))

from natlink.lab import Lab, check_prerequisites  # noqa: E402


def config(directory: Path, protocols: list[str], ipv6: bool) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "natlink.toml"
    path.write_text(f"""[router]
protocols = {json.dumps(protocols)}
timeout = 2
[[mapping]]
name = "web"
external_port = 8080
ipv6 = {"true" if ipv6 else "false"}
[service]
state_dir = "{directory / "state"}"
""")
    return str(path)


def cold(lab: Lab, root: Path, protocols: list[str], ipv6: bool, i: int, env: dict[str, str]) -> float:
    cfg = config(root / f"{'v6' if ipv6 else 'v4'}-{'-'.join(protocols)}-{i}", protocols, ipv6)
    t0 = time.perf_counter()
    r = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "map"], check=False, env=env)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"natlink map failed: {r.stdout}{r.stderr}")
    lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "unmap"], check=False, env=env)
    return elapsed


def connects(lab: Lab, address: str) -> bool:
    try:
        return lab.tcp_banner("wan", address, 8080, timeout=0.3) == b"SERVER6\n"
    except (TimeoutError, ConnectionRefusedError, socket.timeout, OSError):
        return False


def aaaa(lab: Lab, name: str) -> str:
    out = lab.run("wan", ["kdig", f"@{lab.dns_server}", name, "AAAA", "+short", "+timeout=1", "+retry=0"], check=False)
    return out.stdout.strip()


def prefix_changes(n: int) -> list[float]:
    from service_support import HOST, start_natlink
    from test_service_ipv6_lab import write_config

    out = []
    with Lab("cgnat-ipv6", lan2=False) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.tcp_service("lan", 8080, b"SERVER6\n", ipv6=True)
        path = write_config(lab, Path(tmp))  # the service test's config: every schedule 10 minutes
        service = start_natlink(lab, path)
        try:
            deadline = time.monotonic() + 20
            while aaaa(lab, HOST) != lab.lan_ip6 or not connects(lab, lab.lan_ip6):
                if time.monotonic() > deadline:
                    raise SystemExit("the service never published the first AAAA / pinhole:\n" + service.log[-2000:])
                time.sleep(0.05)
            prefixes = ["2600:1:2::/64", "2600:1:1::/64"]
            for i in range(n):
                time.sleep(0.5)  # let the previous round's jobs finish
                lab.ipv6_renumber(prefixes[i % 2])
                t0 = time.perf_counter()
                new = lab.lan_ip6
                while aaaa(lab, HOST) != new or not connects(lab, new):
                    if time.perf_counter() - t0 > 15:
                        raise SystemExit(f"round {i}: no AAAA/connect for {new} after 15 s:\n" + service.log[-2000:])
                    time.sleep(0.01)
                out.append(time.perf_counter() - t0)
        finally:
            service.stop()
    return out


def interface_changes(n: int) -> list[float]:
    """natlink on the host that holds the public IPv4 (`interface:` source): address change -> knot's new A."""
    from service_support import HOST, start_natlink
    from test_service_ipv6_lab import interface_config

    out = []
    with Lab("normal", lan2=False, miniupnpd=False) as lab, tempfile.TemporaryDirectory() as tmp:
        path = interface_config(lab, Path(tmp))
        service = start_natlink(lab, path, host="rtr")

        def a() -> str:
            return lab.run("wan", ["kdig", f"@{lab.dns_server}", HOST, "A", "+short", "+timeout=1"], check=False).stdout.strip()

        try:
            deadline = time.monotonic() + 20
            while a() != lab.wan_ip:
                if time.monotonic() > deadline:
                    raise SystemExit("the service never published the first A record:\n" + service.log[-2000:])
                time.sleep(0.05)
            for i in range(n):
                time.sleep(0.5)
                new = f"11.0.0.{10 + i}"
                t0 = time.perf_counter()
                lab.ip_change(new)
                while a() != new:
                    if time.perf_counter() - t0 > 15:
                        raise SystemExit(f"round {i}: no A {new} after 15 s:\n" + service.log[-2000:])
                    time.sleep(0.01)
                out.append(time.perf_counter() - t0)
        finally:
            service.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=7, help="runs per figure (default 7)")
    args = parser.parse_args()
    problems = check_prerequisites()
    if problems:
        raise SystemExit("lab unavailable: " + "; ".join(problems))
    env = {"PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="natlink-bench-pyc-")}
    figures: dict[str, list[float]] = {"IPv4 only (upnp)": [], "+ pinhole (upnp)": [],
                                       "IPv4 only (pcp)": [], "+ pinhole (pcp)": []}
    with Lab("dual-stack", lan2=False, knot=False) as lab, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cold(lab, root, ["upnp"], True, -1, env)  # warm the bytecode cache
        for i in range(args.n):  # interleaved, so machine load hits all alike
            for proto in ("upnp", "pcp"):
                figures[f"IPv4 only ({proto})"].append(cold(lab, root, [proto], False, i, env))
                figures[f"+ pinhole ({proto})"].append(cold(lab, root, [proto], True, i, env))
    print(f"cold `natlink map`, median of {args.n} (fresh process and state each run):")
    med = {k: statistics.median(v) for k, v in figures.items()}
    for k, v in med.items():
        print(f"  {k:<18} {v * 1000:7.1f} ms")
    for proto in ("upnp", "pcp"):
        base, both = med[f"IPv4 only ({proto})"], med[f"+ pinhole ({proto})"]
        print(f"  pinhole over {proto.upper():<4}: +{(both - base) * 1000:.1f} ms; IPv4 mapping + pinhole is "
              f"{both / base:.2f}x the IPv4 mapping alone")
    changes = prefix_changes(args.n)
    print(f"prefix change -> AAAA in knot + outside IPv6 connect (service, netlink event), {len(changes)} runs: "
          f"median {statistics.median(changes) * 1000:.0f} ms, max {max(changes) * 1000:.0f} ms")
    v4 = interface_changes(args.n)
    print(f"IPv4 interface address change -> A in knot (service, interface: source, netlink event), {len(v4)} runs: "
          f"median {statistics.median(v4) * 1000:.0f} ms, max {max(v4) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
