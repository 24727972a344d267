"""`natlink ip` in the lab: the router (miniupnpd) and an echo service on the WAN host (which sees the
router's NAT address, as a real echo service sees a home router's) as sources."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.lab

ECHO_PORT = 8088


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start_echo(lab: Any) -> ThreadingHTTPServer:
    with lab.netns("wan"):  # the listening socket is created in (and stays in) the WAN host's namespace
        server = ThreadingHTTPServer((lab.wan_host_ip, ECHO_PORT), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def echo_lab(lab: Any) -> Iterator[Any]:
    server = start_echo(lab)
    yield lab
    server.shutdown()
    server.server_close()


def natlink_ip(lab: Any, sources: list[str]) -> tuple[int, dict[str, Any], str]:
    cfg = Path(lab.workdir, "ip.toml")
    listed = ", ".join(f'"{s}"' for s in sources)
    cfg.write_text(f'[router]\nigd_url = "{lab.igd_url}"\n[public_ip]\nsources = [{listed}]\n'
                   f'[service]\nstate_dir = "{lab.workdir}/state"\n')
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), "--json", "ip"], check=False)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_public_router_and_echo_agree(echo_lab: Any) -> None:
    lab = echo_lab
    echo = f"http://{lab.wan_host_ip}:{ECHO_PORT}/"
    code, doc, _ = natlink_ip(lab, ["router", echo])
    assert code == 0, doc
    assert (doc["public_ipv4"], doc["router_wan_ipv4"], doc["verdict"]) == (lab.wan_ip, lab.wan_ip, "public")
    assert [(s["source"], s["address"], s["accepted"]) for s in doc["sources"]] == \
        [("router", lab.wan_ip, True), (echo, lab.wan_ip, True)]
    saved = json.loads(Path(lab.workdir, "state", "publicip.json").read_text())
    assert saved["public_ipv4"] == lab.wan_ip

    lab.ip_change("11.0.0.9")  # both the router and the outside see the new address
    code, doc, _ = natlink_ip(lab, ["router", echo])
    assert code == 0 and doc["public_ipv4"] == "11.0.0.9"


def test_human_output(echo_lab: Any) -> None:
    lab = echo_lab
    cfg = Path(lab.workdir, "h.toml")
    cfg.write_text(f'[router]\nigd_url = "{lab.igd_url}"\n[public_ip]\nsources = ["router"]\n'
                   f'[service]\nstate_dir = "{lab.workdir}/state"\n')
    out = lab.run("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), "ip"]).stdout
    assert f"public IPv4: {lab.wan_ip}" in out and "verdict:     public" in out


def test_dead_echo_source_does_not_block_the_answer(lab: Any) -> None:
    code, doc, _ = natlink_ip(lab, ["router", f"http://{lab.wan_host_ip}:{ECHO_PORT + 1}/"])
    assert code == 0 and doc["public_ipv4"] == lab.wan_ip
    dead = doc["sources"][1]
    assert dead["address"] is None and "cannot connect" in dead["error"]


def test_cgnat(lab_factory: Any) -> None:
    """miniupnpd behind 100.64/10 reports no external address; the carrier-side echo sees 100.64.0.2."""
    lab = lab_factory("cgnat")
    server = start_echo(lab)
    try:
        code, doc, err = natlink_ip(lab, ["router", f"http://{lab.wan_host_ip}:{ECHO_PORT}/"])
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    assert doc["verdict"] == "cgnat" and doc["public_ipv4"] is None and doc["router_wan_ipv4"] is None
    assert lab.wan_ip in doc["problem"] and "ISP" in doc["problem"]
    assert "Traceback" not in err


def test_cgnat_router_only(lab_factory: Any) -> None:
    lab = lab_factory("cgnat")
    code, doc, _ = natlink_ip(lab, ["router"])
    assert code == 1
    assert doc["verdict"] == "unknown" and "no external address" in doc["problem"]


def test_ddns_leaves_records_alone_when_detection_fails(lab_factory: Any) -> None:
    lab = lab_factory("cgnat")
    cfg = Path(lab.workdir, "d.toml")
    cfg.write_text(f'[router]\nigd_url = "{lab.igd_url}"\n[public_ip]\nsources = ["router"]\n'
                   f'[[ddns]]\nname = "home"\nprovider = "rfc2136"\nhostnames = ["rdp.home.example"]\n'
                   f'server = "{lab.dns_server}"\ntsig_key_file = "{lab.tsig_key_file}"\n'
                   f'[service]\nstate_dir = "{lab.workdir}/state"\n')
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), "--json", "ddns"], check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert doc["entries"][0]["action"] == "no-ip" and doc["entries"][0]["requests"] == 0
    assert "left as they are" in proc.stderr
    assert not os.path.exists(os.path.join(lab.workdir, "state", "ddns-home.json"))
