"""Helpers for the service lab tests: a config for the lab, `natlink run` on the LAN host, a local dyndns2
server and an alert sink in the WAN namespace, DNS reads from the WAN host. Not a test module."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

HOST = "rdp.home.example"
REFLECTOR_PORT = 8765
DYNDNS_PORT = 8080
ALERT_PORT = 8090


def write_config(lab: Any, directory: Path, *, extra: str = "", probe: bool = True, schedule: str = "",
                 unmap_on_stop: bool = False, alerts: bool = True, ddns_rfc2136: bool = True) -> Path:
    """A natlink config for the lab. The default schedule is long, so only events can explain quick reactions."""
    directory.mkdir(parents=True, exist_ok=True)
    text = f"""
[router]
gateway = "{lab.gateway}"
lan_ip = "{lab.lan_ip}"
lease = "1h"
timeout = 2

[[mapping]]
name = "rdp"
protocol = "tcp"
external_port = 3390
internal_port = 3389

[public_ip]
sources = ["router"]
"""
    if ddns_rfc2136:
        text += rfc2136_entry(lab)
    if probe:
        text += f"""
[[probe]]
mapping = "rdp"
via = "reflector"
reflector = "http://{lab.wan_host_ip}:{REFLECTOR_PORT}"
timeout = 2
"""
    text += extra
    text += "\n[schedule]\n" + (schedule or 'mappings = "10m"\nddns = "10m"\nprobe = "10m"\npublic_ip = "10m"\njitter = 0\n')
    text += f'\n[service]\nstate_dir = "{directory / "state"}"\nunmap_on_stop = {"true" if unmap_on_stop else "false"}\n'
    if alerts:
        text += f'[service.alerts]\nwebhook = "http://{lab.wan_host_ip}:{ALERT_PORT}/alert"\nmin_interval = "10m"\n'
    path = directory / "natlink.toml"
    path.write_text(text)
    return path


def rfc2136_entry(lab: Any) -> str:
    """The [[ddns]] entry "home": HOST in the lab's zone on knot, signed with the lab's TSIG key."""
    return f"""
[[ddns]]
name = "home"
provider = "rfc2136"
hostnames = ["{HOST}"]
server = "{lab.dns_server}"
zone = "{lab.zone}"
tsig_key_file = "{lab.tsig_key_file}"
ttl = "60s"
"""


def dyndns2_entry(lab: Any, directory: Path, name: str = "dyn", hostname: str = "dyn.home.example") -> str:
    password = directory / f"{name}.password"
    password.write_text("s3cret-pass\n")
    password.chmod(0o600)
    return f"""
[[ddns]]
name = "{name}"
provider = "dyndns2"
hostnames = ["{hostname}"]
server = "http://{lab.wan_host_ip}:{DYNDNS_PORT}"
allow_insecure_http = true  # the lab's dyndns2 server speaks plain HTTP (natlink warns about it every run)
username = "user"
password_file = "{password}"
verify = false  # this stand-in does not publish to the lab's DNS: its live record would always differ
"""


@dataclass
class Natlink:
    """`natlink run` on the LAN host, with its output collected."""

    proc: subprocess.Popen[str]
    log_path: Path
    config: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - t0

    def state(self, key: str) -> Any:
        path = self.config.parent / "state" / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None


def start_natlink(lab: Any, config: Path, *args: str, env: dict[str, str] | None = None, host: str = "lan") -> Natlink:
    log_path = config.parent / f"natlink-{time.monotonic_ns()}.log"
    fh = open(log_path, "w")
    # `ip netns exec` keeps our pid as natlink's (exec), so signals reach the service itself.
    proc = lab.popen(host, [sys.executable, "-m", "natlink", "-v", "-c", str(config), "run", *args],
                     stdout=fh, stderr=subprocess.STDOUT, text=True,
                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    fh.close()
    return Natlink(proc, log_path, config)


def start_reflector(lab: Any) -> subprocess.Popen[Any]:
    proc = lab.popen("wan", [sys.executable, "-m", "natlink", "reflector", "--listen",
                             f"{lab.wan_host_ip}:{REFLECTOR_PORT}", "--insecure-http"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: lab.run("wan", ["python3", "-c", f"import socket; socket.create_connection(('{lab.wan_host_ip}', {REFLECTOR_PORT}), 1)"],
                             check=False).returncode == 0, 10, "reflector listening")
    return proc


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def dns_a(lab: Any, name: str = HOST) -> str:
    out = lab.run("wan", ["kdig", f"@{lab.dns_server}", name, "A", "+short", "+timeout=1", "+retry=0"], check=False)
    return out.stdout.strip()


def wan_connects(lab: Any, port: int = 3390) -> bool:
    try:
        return lab.tcp_banner("wan", lab.wan_ip, port, 1.0) == b"RDP-STANDIN\n"
    except OSError:
        return False


def router_table(lab: Any) -> list[str]:
    """The router's mapping table (from upnpc, the reference client), without the index and the ticking lease."""
    out = lab.run("lan", ["upnpc", "-u", lab.igd_url, "-l"], check=False, timeout=10).stdout
    return sorted(" ".join(line.split()[1:-1]) for line in out.splitlines()
                  if "->" in line and ("TCP" in line or "UDP" in line))


@dataclass
class HttpSink:
    """An HTTP server inside the WAN namespace: a dyndns2 provider or an alert webhook. Records requests."""

    server: http.server.ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_http_sink(lab: Any, port: int, answer: Callable[[dict[str, Any]], tuple[int, str]]) -> HttpSink:
    sink: HttpSink

    class Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            url = urlparse(self.path)
            req = {"method": self.command, "path": url.path, "query": parse_qs(url.query), "body": body,
                   "auth": self.headers.get("Authorization"), "client": self.client_address[0], "at": time.time()}
            sink.requests.append(req)
            status, text = answer(req)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = lab.call("wan", http.server.ThreadingHTTPServer, (lab.wan_host_ip, port), Handler)
    sink = HttpSink(server)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return sink


def job_done(nl: Natlink, job: str, after: float = 0.0) -> bool:
    """The service finished `job` (any outcome) at or after `after` (unix time)."""
    svc = nl.state("service") or {}
    rec = (svc.get("jobs") or {}).get(job) or {}
    return bool(rec.get("last_end") and rec["last_end"] >= after)
