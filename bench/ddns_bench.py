#!/usr/bin/env python3
"""DDNS bench: provider requests over 100 cycles with a stable IP (must be 0 after the first), and the time
from `natlink ddns` start to the record being visible in knot.

    python bench/ddns_bench.py            # HTTP providers against local fakes; rfc2136 + timing in the lab (root)
    python bench/ddns_bench.py --no-lab   # only the HTTP providers

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "unit"))  # the strict provider fakes live with the tests

CYCLES = 100
INTERVAL = 300.0  # simulated seconds between cycles (schedule.ddns default)


def http_providers() -> None:
    import logging

    from pytest_httpserver import HTTPServer

    from natlink.config import parse_config
    from natlink.ddns.updater import update_all
    from natlink.publicip import PublicIpReport
    from natlink.state import StateStore
    from test_ddns_fakes import CF_TOKEN, PASSWORD, TOKEN, CloudflareFake, DuckFake, Dyndns2Fake, dyndns2_toml

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fakes' access log is noise here
    server = HTTPServer()
    server.start()
    dyn, noip = Dyndns2Fake(path="/dyn/nic/update", ipv6_param="myip"), Dyndns2Fake(path="/nic/update")
    duck, cf = DuckFake(), CloudflareFake()
    server.expect_request("/dyn/nic/update").respond_with_handler(dyn.handler)
    server.expect_request("/nic/update").respond_with_handler(noip.handler)
    server.expect_request("/update").respond_with_handler(duck.handler)
    server.expect_request(re.compile("/client/v4/.*")).respond_with_handler(cf.handler)
    base = server.url_for("/").rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name, value in (("pw", PASSWORD), ("duck", TOKEN), ("cf", CF_TOKEN)):
            (t / name).write_text(value)
            (t / name).chmod(0o600)
        text = (dyndns2_toml("dyndns2", f"{base}/dyn/nic/update", t / "pw").replace('name = "d"', 'name = "dyn"')
                + dyndns2_toml("noip", base, t / "pw").replace('name = "d"', 'name = "noip"')
                + f'[[ddns]]\nname = "duck"\nprovider = "duckdns"\nhostnames = ["myhome"]\nserver = "{base}"\n'
                  f'token_file = "{t / "duck"}"\n'
                + f'[[ddns]]\nname = "cf"\nprovider = "cloudflare"\nhostnames = ["home.example.com"]\n'
                  f'server = "{base}/client/v4"\napi_token_file = "{t / "cf"}"\n'
                + f'[service]\nstate_dir = "{t / "state"}"\n')
        cfg = parse_config(text, t / "c.toml")
        store = StateStore(cfg.service.state_dir)
        report = PublicIpReport("11.0.0.2", None, "11.0.0.2", "public")
        counts = {"dyn": lambda: len(dyn.requests), "noip": lambda: len(noip.requests),
                  "duck": lambda: len(duck.requests), "cf": lambda: len(cf.requests)}
        first: dict[str, int] = {}
        started = time.perf_counter()
        now = time.time()
        rng = random.Random(0)
        for cycle in range(CYCLES):
            update_all(cfg, store, report, now=now + cycle * INTERVAL, rng=rng)
            if cycle == 0:
                first = {k: f() for k, f in counts.items()}
        elapsed = time.perf_counter() - started
        print(f"HTTP providers, {CYCLES} cycles, stable IP (local strict fakes):")
        for k, f in counts.items():
            print(f"  {k:<5} requests: first cycle {first[k]}, cycles 2-{CYCLES} {f() - first[k]}")
        print(f"  mean cycle time over 4 entries: {elapsed / CYCLES * 1000:.2f} ms")
    server.stop()


def lab_rfc2136() -> None:
    import dns.message
    import dns.query

    from natlink.lab import Lab, check_prerequisites

    problems = check_prerequisites()
    if problems:
        print("lab: skipped (" + "; ".join(problems) + ")")
        return
    name = "rdp.home.example"
    with Lab() as lab:
        cfg_path = os.path.join(lab.workdir, "bench.toml")
        Path(cfg_path).write_text(
            f'[router]\nigd_url = "{lab.igd_url}"\n[public_ip]\nsources = ["router"]\n'
            f'[[ddns]]\nname = "home"\nprovider = "rfc2136"\nhostnames = ["{name}"]\nserver = "{lab.dns_server}"\n'
            f'tsig_key_file = "{lab.tsig_key_file}"\n[service]\nstate_dir = "{lab.workdir}/state"\n')
        knot_log = Path(lab.workdir, "knot.log")

        # 1. 100 real cycles (router detection + update_all) inside the LAN namespace.
        def cycles() -> tuple[list[int], list[float]]:
            from natlink.config import load_config
            from natlink.ddns.updater import update_all
            from natlink.portmap.router import open_router
            from natlink.publicip import detect
            from natlink.state import StateStore

            cfg = load_config(cfg_path)
            store = StateStore(cfg.service.state_dir)
            router = open_router(cfg.router)
            sent, times = [], []
            try:
                for _ in range(CYCLES):
                    t0 = time.perf_counter()
                    report = detect(cfg, router=router)
                    (result,) = update_all(cfg, store, report)
                    times.append(time.perf_counter() - t0)
                    sent.append(result.requests)
            finally:
                router.close()
            return sent, times

        sent, times = lab.call("lan", cycles)
        updates = knot_log.read_text().count("DDNS, processing")
        print(f"rfc2136 against knot, {CYCLES} cycles (router detection + update), stable IP:")
        print(f"  DNS messages sent: first cycle {sent[0]}, cycles 2-{CYCLES} {sum(sent[1:])}; "
              f"UPDATEs knot processed: {updates}")
        print(f"  cycle time: median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms (first {times[0] * 1000:.1f} ms)")

        # 2. `natlink ddns` start -> record visible at knot, after an ISP address change.
        def wait_visible(ip: str, box: dict[str, float]) -> None:
            query = dns.message.make_query(name, "A")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    resp = dns.query.udp(query, lab.dns_server, timeout=0.2)
                    if any(rd.to_text() == ip for rrset in resp.answer for rd in rrset):
                        box["visible"] = time.monotonic()
                        return
                except Exception:
                    pass
                time.sleep(0.002)

        visible, exited = [], []
        for i in range(5):
            ip = f"11.0.0.{20 + i}"
            lab.ip_change(ip)
            box: dict[str, float] = {}
            poller = threading.Thread(target=lab.call, args=("wan", wait_visible, ip, box))
            poller.start()
            t0 = time.monotonic()
            proc = lab.popen("lan", [sys.executable, "-m", "natlink", "-q", "-c", cfg_path, "--json", "ddns"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            out, _ = proc.communicate(timeout=30)
            exited.append(time.monotonic() - t0)
            poller.join()
            doc = json.loads(out)
            assert doc["entries"][0]["outcome"] == "good", doc
            visible.append(box["visible"] - t0)
        print("`natlink ddns` (new process) start -> record visible in knot, 5 address changes:")
        print(f"  visible after: median {statistics.median(visible) * 1000:.0f} ms, "
              f"min {min(visible) * 1000:.0f} ms, max {max(visible) * 1000:.0f} ms")
        print(f"  process exit after: median {statistics.median(exited) * 1000:.0f} ms "
              f"(includes Python start-up, config, router detection, update, verification)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-lab", action="store_true", help="skip the rfc2136/knot part (needs root)")
    args = parser.parse_args()
    http_providers()
    if not args.no_lab:
        lab_rfc2136()
    return 0


if __name__ == "__main__":
    sys.exit(main())
