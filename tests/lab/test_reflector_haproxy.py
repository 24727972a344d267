"""Two reflector instances behind a real HAProxy (TCP mode, send-proxy-v2) on the lab's WAN host.

The client probes from the LAN through the lab's real NAT; the reflectors see only HAProxy's connections and
take the requester from the PROXY v2 header (trusted: HAProxy's address only), so their dial-backs reach the
real client. A client talking to an instance directly cannot name another address with a PROXY header.
TLS passes through HAProxy untouched: the PROXY header comes first, then the ClientHello.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from natlink.probe import proxy_protocol

pytestmark = pytest.mark.lab

INSTANCES = (8801, 8802)

HAPROXY_CFG = """
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend reflector
    bind {host}:8765
    default_backend reflectors
backend reflectors
    balance roundrobin
{servers}
"""


def _cert(lab, ip: str) -> str:
    cert, key = os.path.join(lab.workdir, "r.crt"), os.path.join(lab.workdir, "r.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=natlink-lab-reflector", "-addext", f"subjectAltName=IP:{ip}"],
                   check=True, capture_output=True, timeout=60)
    return cert


def _wait_in_wan(lab, check, what: str) -> None:
    """Until ``check()``, run in the WAN host's namespace, is true (at most 15 s)."""
    deadline = time.monotonic() + 15
    while not lab.call("wan", check):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _wait_up(lab, cert: str | None, host: str, port: int) -> None:
    """Until HAProxy and an instance behind it answer (a TLS handshake, or a plain /v1/health)."""
    def up() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1) as raw:
                if cert:
                    with ssl.create_default_context(cafile=cert).wrap_socket(raw, server_hostname=host):
                        return True
                raw.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                return raw.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    _wait_in_wan(lab, up, f"{host}:{port} did not come up")


def _wait_listening(lab, host: str, port: int) -> None:
    """Until a TCP connect to host:port is accepted (the instance's socket is listening)."""
    def listening() -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    _wait_in_wan(lab, listening, f"{host}:{port} did not start listening")


def behind_haproxy(lab, tls: bool) -> str | None:
    """Two instances trusting only HAProxy's address (the WAN host's), HAProxy in front; the CA file or None."""
    host = lab.wan_host_ip
    cert = _cert(lab, host) if tls else None
    serving = ["--tls-cert", cert, "--tls-key", cert.replace(".crt", ".key")] if cert else ["--insecure-http"]
    for port in INSTANCES:
        lab.popen("wan", [sys.executable, "-m", "natlink", "-v", "reflector", "--listen", f"{host}:{port}",
                          *serving, "--trusted-proxy", f"{host}/32"],
                  stderr=open(os.path.join(lab.workdir, f"reflector-{port}.log"), "w"))
    cfg = os.path.join(lab.workdir, "haproxy.cfg")
    with open(cfg, "w") as fh:
        fh.write(HAPROXY_CFG.format(host=host, servers="\n".join(
            f"    server r{port} {host}:{port} send-proxy-v2" for port in INSTANCES)))
    lab.popen("wan", ["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_up(lab, cert, host, 8765)
    for port in INSTANCES:  # HAProxy answering means one instance listens; tests also talk to each one directly
        _wait_listening(lab, host, port)
    return cert


def _log(lab, port: int) -> str:
    with open(os.path.join(lab.workdir, f"reflector-{port}.log")) as fh:
        return fh.read()


def _logs_with(lab, text: str, ports: tuple[int, ...] = INSTANCES) -> str:
    """The instances' logs once `text` is in them (a line is written just after its answer was sent)."""
    deadline = time.monotonic() + 5
    while True:
        logs = "".join(_log(lab, port) for port in ports)
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)


def test_probes_through_haproxy_dial_back_the_real_client(lab):
    cert = behind_haproxy(lab, tls=True)
    lab.run("lan", ["upnpc", "-u", lab.igd_url, "-e", "natlink:test", "-a", lab.lan_ip, "3389", "3390", "TCP"])
    cfg = os.path.join(lab.workdir, "natlink.toml")
    with open(cfg, "w") as fh:
        fh.write(f"""
[router]
igd_url = "{lab.igd_url}"
lan_ip = "{lab.lan_ip}"
[public_ip]
sources = ["router"]
[[mapping]]
name = "rdp"
protocol = "tcp"
external_port = 3390
internal_port = 3389
[[probe]]
mapping = "rdp"
reflector = "https://{lab.wan_host_ip}:8765"
[service]
state_dir = "{lab.workdir}/state"
""")
    for _ in range(2):  # round robin: one probe per instance
        proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "--json", "probe"], check=False,
                       timeout=60, env={"SSL_CERT_FILE": cert})
        r = json.loads(proc.stdout)["results"][0]
        assert proc.returncode == 0 and r["verdict"] == "verified" and r["identity"] == "nonce", r
        assert r["seen_as"] == lab.wan_ip  # the NATed client, not HAProxy's address
    for port in INSTANCES:  # each instance served one, saw the real client via HAProxy, dialled it back
        log = _logs_with(lab, "probed=3390/tcp:open", (port,))
        assert f"client={lab.wan_ip} via={lab.wan_host_ip} method=POST path=/v1/probe status=200" in log, log
        assert "probed=3390/tcp:open" in log


def test_a_direct_client_cannot_spoof_a_proxy_header(lab):
    behind_haproxy(lab, tls=False)
    third_party = lab.tcp_service("lan2", 3389)  # the address a spoofer would like dialled

    def spoof(port: int) -> tuple[int, str]:
        body = b'{"ports": [3389]}'
        request = (f"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        header = proxy_protocol.build(lab.lan2_ip, 1234, lab.wan_host_ip, port)
        with socket.create_connection((lab.wan_host_ip, port), timeout=5) as s:
            s.sendall(header + request)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return int(data.split(b" ", 2)[1]), json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]

    # Straight to an instance from the LAN (NATed to the router's WAN address, not a trusted proxy): the
    # header is not read, so the bytes are just not HTTP.
    for port in INSTANCES:
        assert lab.call("lan", spoof, port) == (400, "this is not an HTTP/1.x request")
    # Through HAProxy: HAProxy puts its own header first, naming the real client; the instance reads that one
    # only, and the client's forged header after it is again not HTTP.
    assert lab.call("lan", spoof, 8765) == (400, "this is not an HTTP/1.x request")
    assert third_party.connections == 0
    logs = _logs_with(lab, f"client={lab.wan_ip} via={lab.wan_host_ip} method=- path=- status=400")
    assert f"client={lab.wan_ip} via={lab.wan_host_ip} method=- path=- status=400" in logs, logs
    assert "probed=" not in logs and lab.lan2_ip not in logs
