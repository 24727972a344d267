"""Port mapping speed in the lab, side by side with the reference clients (upnpc, natpmpc).

    sudo python bench/portmap_bench.py [-n RUNS]

Prints medians of: cold `natlink map` (fresh process, no cache) per protocol choice vs `upnpc -a`, the two
interleaved run by run; warm `natlink map` with a cached IGD URL; 20 mappings reconciled, and re-run: every
reconcile verifies (NAT-PMP/PCP ask again for each mapping, pipelined; UPnP reads the table once), so the
re-run is the verification cost; and the protocol time natlink reports (from the discovery burst to the end
of the reconcile, without interpreter start; `natlink map` sends the burst before loading the rest of its
code, so that part of its start-up overlaps the router's answers and is counted here; "reconcile only"
leaves out the opening). Python bytecode is cached in a temp dir, as for an installed package.

What is not natlink's is measured beside it (bench/portmap_floors.py): `python -c pass` with this machine's
site-packages .pth files and in a venv without them (both interpreters run the same natlink, and the cold
map is timed under both); miniupnpd's SSDP hold (50 ms, the floor of any UPnP discovery), its own time per
NAT-PMP request (answers to 20 requests sent at once; it deletes and re-adds the nft rules of an existing
mapping), and its port-in-use check's read of /proc/net/tcp in the router's namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from natlink.lab import Lab, check_prerequisites  # noqa: E402

import portmap_floors  # noqa: E402


def config(directory: Path, protocols: list[str], n: int = 1) -> str:
    lines = ["[router]", f"protocols = {json.dumps(protocols)}", 'lan_ip = "auto"', ""]
    for i in range(n):
        lines += ["[[mapping]]", f'name = "m{i}"', f"external_port = {3390 + i}", f"internal_port = {3389 if i == 0 else 5000 + i}", ""]
    lines += ["[service]", f'state_dir = "{directory / "state"}"']
    path = directory / "natlink.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def timed(lab: Lab, argv: list[str], env: dict[str, str], cpu: list[float] | None = None
          ) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of one command in the LAN namespace; ``cpu`` gets the CPU seconds it used (user + system,
    `ip netns exec` included): on a shared machine the wall time also holds the wait for a free core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = lab.run("lan", argv, check=False, env=env)
    wall = time.perf_counter() - t0
    if cpu is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall, r


def clear_table(lab: Lab) -> None:
    def clear() -> None:
        import miniupnpc
        u = miniupnpc.UPnP()
        u.selectigd(lab.igd_url)
        while (e := u.getgenericportmapping(0)) is not None:
            u.deleteportmapping(e[0], e[1])
    lab.call("lan", clear)


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} ms (min {min(values) * 1000:.1f}, n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    args = parser.parse_args()
    problems = check_prerequisites()
    if problems:
        print("lab unavailable: " + "; ".join(problems), file=sys.stderr)
        return 1
    pycache = tempfile.mkdtemp(prefix="natlink-bench-pyc-")
    env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": pycache}
    py = [sys.executable, "-m", "natlink"]
    venv = portmap_floors.clean_venv(Path(tempfile.mkdtemp(prefix="natlink-bench-venv-")) / "venv", REPO)
    clean_py = [venv, "-m", "natlink"]
    rows: list[tuple[str, str]] = []
    with Lab("normal", knot=False) as lab:
        lab.tcp_service("lan", 3389)
        timed(lab, [*py, "--version"], env)  # fill the bytecode cache
        timed(lab, [*clean_py, "--version"], env)
        floor = [timed(lab, [sys.executable, "-c", "pass"], env)[0] for _ in range(args.runs)]
        clean_floor = [timed(lab, [venv, "-c", "pass"], env)[0] for _ in range(args.runs)]
        rows.append(("python -c pass (interpreter + this environment's .pth files)", ms(floor)))
        rows.append(("python -c pass in a venv without those .pth files", ms(clean_floor)))
        rows.append(("    so the environment's .pth files cost every process",
                     f"{(statistics.median(floor) - statistics.median(clean_floor)) * 1000:7.1f} ms"))

        for label, protocols in (("cold natlink map, protocols = all three", ["upnp", "natpmp", "pcp"]),
                                 ("cold natlink map, upnp only (SSDP)", ["upnp"]),
                                 ("cold natlink map, natpmp only", ["natpmp"]),
                                 ("cold natlink map, pcp only", ["pcp"])):
            walls, proto, chosen = [], [], set()
            for _ in range(args.runs):
                clear_table(lab)
                with tempfile.TemporaryDirectory(dir=lab.workdir) as d:
                    cfg = config(Path(d), protocols)
                    wall, r = timed(lab, [*py, "-c", cfg, "--json", "map"], env)
                    doc = json.loads(r.stdout)
                    assert doc["ok"] and doc["actions"][0]["action"] == "add", r.stderr
                    walls.append(wall)
                    proto.append(doc["elapsed"])
                    chosen.add(doc["router"]["protocol"])
            rows.append((f"{label} [{'/'.join(sorted(chosen))}]", ms(walls)))
            rows.append(("    of which protocol time (burst to end)", ms(proto)))
        clear_table(lab)

        upnpc_cold, upnpc_warm, side, clean_side, side_cpu, clean_cpu, upnpc_cpu = [], [], [], [], [], [], []
        load = os.getloadavg()[0]
        for _ in range(args.runs):  # interleaved: cold natlink map (both interpreters), then upnpc -a
            for python, walls, cpu in ((py, side, side_cpu), (clean_py, clean_side, clean_cpu)):
                clear_table(lab)
                with tempfile.TemporaryDirectory(dir=lab.workdir) as d:
                    wall, r = timed(lab, [*python, "-c", config(Path(d), ["upnp", "natpmp", "pcp"]), "map"], env, cpu)
                    assert r.returncode == 0, r.stderr
                    walls.append(wall)
            clear_table(lab)
            w, r = timed(lab, ["upnpc", "-e", "bench", "-a", lab.lan_ip, "3389", "3390", "TCP"], env, upnpc_cpu)
            assert r.returncode == 0 and "is redirected" in r.stdout, r.stdout
            upnpc_cold.append(w)
            lab.run("lan", ["upnpc", "-u", lab.igd_url, "-d", "3390", "TCP"], check=False)
            w, r = timed(lab, ["upnpc", "-u", lab.igd_url, "-e", "bench", "-a", lab.lan_ip, "3389", "3390", "TCP"], env)
            upnpc_warm.append(w)
            lab.run("lan", ["upnpc", "-u", lab.igd_url, "-d", "3390", "TCP"], check=False)
        rows.append(("side by side: cold natlink map (all three protocols)", ms(side)))
        rows.append(("side by side: the same, venv without the environment's .pth", ms(clean_side)))
        rows.append(("side by side: upnpc -a (discovery), reference", ms(upnpc_cold)))
        rows.append(("  speed-up cold natlink vs upnpc -a (ratio of medians), as measured",
                     f"{statistics.median(upnpc_cold) / statistics.median(side):.1f}x"))
        rows.append(("  the same without the environment's .pth files",
                     f"{statistics.median(upnpc_cold) / statistics.median(clean_side):.1f}x"))
        rows.append(("  CPU used: natlink map / in the venv / upnpc -a",
                     f"{statistics.median(side_cpu) * 1000:.0f} / {statistics.median(clean_cpu) * 1000:.0f} / "
                     f"{statistics.median(upnpc_cpu) * 1000:.0f} ms (2 cores; 1-min load "
                     f"{load:.1f} -> {os.getloadavg()[0]:.1f}: other work waits for a core too)"))
        rows.append(("upnpc -u URL -a (known URL), reference", ms(upnpc_warm)))

        # warm: cached IGD URL (state kept between runs), mapping removed each time so it is a real add
        with tempfile.TemporaryDirectory(dir=lab.workdir) as d:
            cfg = config(Path(d), ["upnp", "natpmp", "pcp"])
            clear_table(lab)
            timed(lab, [*py, "-c", cfg, "--json", "map"], env)  # learns and caches
            walls, proto, opens = [], [], []
            sticky = json.loads((Path(d) / "state" / "router.json").read_text())["protocol"]
            # force the UPnP path with a cached URL: the most expensive protocol when cold
            (Path(d) / "state" / "router.json").write_text(json.dumps(
                {"gateway": lab.gateway, "igd_url": lab.igd_url, "protocol": "upnp"}))
            (Path(d) / "state" / "mappings.json").unlink(missing_ok=True)
            for _ in range(args.runs):
                clear_table(lab)
                wall, r = timed(lab, [*py, "-c", cfg, "--json", "map"], env)
                doc = json.loads(r.stdout)
                assert doc["ok"] and doc["router"]["protocol"] == "upnp" and doc["router"]["igd_url_source"] == "cache"
                walls.append(wall)
                proto.append(doc["elapsed"])
                opens.append(doc["router"]["open_time"])
            rows.append((f"warm natlink map, cached IGD URL (cold run chose {sticky})", ms(walls)))
            rows.append(("    of which protocol time (burst to end)", ms(proto)))
            rows.append(("    of which opening the router (selectigd(url))", ms(opens)))

        # ["natpmp", "upnp"]: NAT-PMP maps, UPnP answers discovery too, so one table read verifies all 20
        for protocols in (["upnp"], ["natpmp"], ["pcp"], ["natpmp", "upnp"]):
            adds, keeps, walls, verify_only = [], [], [], []
            for _ in range(args.runs):
                clear_table(lab)
                with tempfile.TemporaryDirectory(dir=lab.workdir) as d:
                    cfg = config(Path(d), protocols, n=20)
                    wall, r = timed(lab, [*py, "-c", cfg, "--json", "map"], env)
                    doc = json.loads(r.stdout)
                    assert doc["ok"] and [a["action"] for a in doc["actions"]] == ["add"] * 20, r.stderr
                    adds.append(doc["elapsed"])
                    walls.append(wall)
                    _, r = timed(lab, [*py, "-c", cfg, "--json", "map"], env)
                    doc = json.loads(r.stdout)
                    # seen in the table read over UPnP -> keep; NAT-PMP/PCP alone: asked again, each -> verify
                    again = "keep" if "upnp" in protocols else "verify"
                    assert [(a["action"], a["ok"]) for a in doc["actions"]] == [(again, True)] * 20, r.stderr
                    assert doc["router"]["protocol"] == protocols[0]
                    keeps.append(doc["elapsed"])
                    verify_only.append(doc["elapsed"] - doc["router"]["open_time"])
            what = "one table read" if "upnp" in protocols else "20 re-requests, pipelined"
            rows.append((f"20 mappings, {'+'.join(protocols)}: all added (process wall)", ms(walls)))
            rows.append(("    protocol time, all added", ms(adds)))
            rows.append((f"    protocol time, re-run: 20 verified ({what}), with discovery", ms(keeps)))
            rows.append(("    of which reconcile only (the verification)", ms(verify_only)))
            rows.append(("    verification per mapping", ms([v / 20 for v in verify_only])))
        clear_table(lab)
        rows += reference_floor(lab, env, args.runs)
        rows += router_floor(lab, args.runs)

    width = max(len(k) for k, _ in rows)
    print(f"natlink port-mapping bench (lab, miniupnpd, {args.runs} runs each, medians)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    return 0


def router_floor(lab: Lab, runs: int) -> list[tuple[str, str]]:
    """miniupnpd's own time (bench/portmap_floors.py): what no client can go below on this router."""
    ports = [(3390 + i, 3389 if i == 0 else 5000 + i) for i in range(20)]
    clear_table(lab)
    lab.call("lan", portmap_floors.natpmp_spacing, lab.gateway, ports)  # 20 existing mappings, as in a re-run
    spacing = [lab.call("lan", portmap_floors.natpmp_spacing, lab.gateway, ports) for _ in range(runs)]
    clear_table(lab)
    hold = lab.call("lan", portmap_floors.ssdp_hold, lab.gateway, runs)
    read, read_min = portmap_floors.proc_net_tcp(lab)
    return [
        ("router floor: miniupnpd holds an SSDP answer (unicast M-SEARCH)", ms(hold)),
        ("router floor: miniupnpd per NAT-PMP re-request (20 sent at once)", ms(spacing)),
        ("    x 20 mappings", f"{statistics.median(spacing) * 20 * 1000:7.1f} ms"),
        ("    of which reading /proc/net/tcp in the router's netns (port-in-use)",
         f"{read * 1000:7.1f} ms (min {read_min * 1000:.1f})"),
    ]


def reference_floor(lab: Lab, env: dict[str, str], runs: int) -> list[tuple[str, str]]:
    """The router's own floor: the same 20 adds made by the reference clients. natpmpc maps one port per
    process (and asks for the public address first), so a `true` in the LAN namespace is timed as the
    process cost; `upnpc -r` makes all 20 in one process (each add followed by a GetSpecific check)."""
    spawn, natpmpc, upnpc = [], [], []
    ports = [(3390 + i, 3389 if i == 0 else 5000 + i) for i in range(20)]
    for _ in range(runs):
        clear_table(lab)
        t0 = time.perf_counter()
        for _ in ports:
            lab.run("lan", ["true"], env=env)
        spawn.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for ext, internal in ports:
            r = lab.run("lan", ["natpmpc", "-g", lab.gateway, "-a", str(ext), str(internal), "tcp", "3600"],
                        check=False, env=env)
            assert r.returncode == 0 and "Mapped public port" in r.stdout, r.stdout
        natpmpc.append(time.perf_counter() - t0)
        for ext, internal in ports:  # lifetime 0 removes them
            lab.run("lan", ["natpmpc", "-g", lab.gateway, "-a", "0", str(internal), "tcp", "0"], check=False)
        clear_table(lab)
        argv = ["upnpc", "-u", lab.igd_url, "-e", "bench", "-r"]
        for ext, internal in ports:
            argv += [str(internal), str(ext), "TCP"]
        wall, r = timed(lab, argv, env)
        assert r.returncode == 0 and r.stdout.count("is redirected") == 20, r.stdout
        upnpc.append(wall)
    clear_table(lab)
    per_add = [(n - s) / len(ports) for n, s in zip(natpmpc, spawn)]
    return [
        ("reference floor: 20 adds, natpmpc -a (20 processes)", ms(natpmpc)),
        ("    process cost (20 x `true` in the lan ns)", ms(spawn)),
        ("    per add without the process (public address + map)", ms(per_add)),
        ("reference floor: 20 adds, upnpc -u URL -r (one process)", ms(upnpc)),
    ]


if __name__ == "__main__":
    sys.exit(main())
