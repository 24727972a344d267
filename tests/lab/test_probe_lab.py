"""natlink probe on the LAN host against a reflector on the WAN host, through the lab's real NAT."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from natlink.lab import probes
from natlink.probe import reflector_client as rc
from natlink.probe.dial import dial_tcp

pytestmark = pytest.mark.lab
REFLECTOR = "http://11.0.0.1:8765"


def write_config(lab, probes_toml: str, *, internal_ip: str = "10.0.1.201", extra: str = "") -> str:
    path = os.path.join(lab.workdir, "natlink.toml")
    with open(path, "w") as fh:
        fh.write(f"""
[router]
igd_url = "{lab.igd_url}"
lan_ip = "10.0.1.201"
[public_ip]
sources = ["router"]
[[mapping]]
name = "rdp"
protocol = "tcp"
external_port = 3390
internal_port = 3389
internal_ip = "{internal_ip}"
{extra}
{probes_toml}
[service]
state_dir = "{lab.workdir}/state"
""")
    return path


RDP_PROBE = f'[[probe]]\nmapping = "rdp"\nreflector = "{REFLECTOR}"\n'
INSECURE = "allow_insecure_http = true\n"  # a token to the lab's plain-HTTP reflector (refused without it)


def start_reflector(lab, *extra: str, host_ip: str | None = None):
    host_ip = host_ip or lab.wan_host_ip
    proc = lab.popen("wan", [sys.executable, "-m", "natlink", "-v", "reflector", "--listen", f"{host_ip}:8765", "--insecure-http", *extra],
                     stderr=open(os.path.join(lab.workdir, "reflector.log"), "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if lab.call("wan", probes.http_get_status, host_ip, 8765, "/v1/health") == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError("reflector did not start")


def reflector_log(lab) -> str:
    with open(os.path.join(lab.workdir, "reflector.log")) as fh:
        return fh.read()


def upnp_map(lab, host: str, internal_ip: str, internal_port: int, external_port: int) -> None:
    lab.run(host, ["upnpc", "-u", lab.igd_url, "-e", "natlink:test", "-a", internal_ip, str(internal_port),
                   str(external_port), "TCP"])


def probe(lab, cfg: str, *args: str):
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "--json", "probe", *args], check=False, timeout=60)
    doc = json.loads(proc.stdout)
    return proc.returncode, {r["name"]: r for r in doc["results"]}, proc


def test_service_down_port_free_natlink_listens_and_proves_the_path(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE))
    r = res["rdp"]
    assert code == 0
    assert r["verdict"] == "verified" and r["identity"] == "nonce"
    assert r["target"] == f"{lab.wan_ip}:3390" and r["family"] == "ipv4"
    assert "natlink's own listener on 10.0.1.201:3389" in r["detail"]
    # the listener is gone afterwards: the port is free for the real service again
    assert lab.call("lan", dial_tcp, lab.lan_ip, 3389, 1.0).outcome == "refused"


def test_service_up_speaking_first_is_verified_by_its_greeting(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    service = lab.tcp_service("lan", 3389, banner=b"RDP-STANDIN v7\n")
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE))
    assert code == 0 and res["rdp"]["verdict"] == "verified" and res["rdp"]["identity"] == "greeting"
    assert service.connections >= 2  # once from inside (greeting), once from outside
    assert lab.wan_host_ip in [p[0] for p in service.peers]


def test_service_up_but_silent_is_open(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    lab.tcp_service("lan", 3389, banner=b"")
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE))
    assert code == 0 and res["rdp"]["verdict"] == "open"
    assert "does not speak first" in res["rdp"]["detail"]


def test_mapping_present_service_down_elsewhere_is_refused_with_the_right_sentence(lab):
    """The mapping points at lan2 (10.0.1.99), where nothing listens and natlink cannot listen."""
    start_reflector(lab)
    upnp_map(lab, "lan2", lab.lan2_ip, 3389, 3390)
    code, res, proc = probe(lab, write_config(lab, RDP_PROBE, internal_ip=lab.lan2_ip))
    r = res["rdp"]
    assert code == 1 and r["verdict"] == "refused"
    assert r["detail"] == "refused: the router forwards 3390 but nothing listens on 10.0.1.99:3389 — start the service"


def test_no_mapping_is_refused_by_the_router_and_explained(lab):
    start_reflector(lab)
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE))
    r = res["rdp"]
    # Linux NAT without a DNAT rule: the router itself answers with RST (as the lab notes record)
    assert code == 1 and r["verdict"] == "refused"
    assert "does not forward 3390 here" in r["detail"] and "natlink map" in r["detail"]


def test_isp_blocked_port_80_times_out_and_is_blamed_on_the_isp(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    lab.tcp_service("lan", 3389)
    probes_toml = RDP_PROBE + f'[[probe]]\nname = "web"\ntarget = "{lab.wan_ip}:80"\nreflector = "{REFLECTOR}"\n' \
                              'timeout = 2\n'
    cfg = write_config(lab, probes_toml)
    code, res, _ = probe(lab, cfg)
    assert res["web"]["verdict"] == "refused"  # before the block: the router resets
    lab.blocked_port(80)
    code, res, _ = probe(lab, cfg)
    assert code == 1
    assert res["rdp"]["verdict"] == "verified"
    assert res["web"]["verdict"] == "timeout"
    assert res["web"]["detail"].startswith("timeout on 80 but 3390 works: your ISP blocks inbound port 80")
    assert res["web"]["elapsed"] <= 2.0 + 0.5


def test_blocked_mapped_port_alone_is_a_timeout(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    lab.blocked_port(3390)
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE.replace("reflector =", "timeout = 1\nreflector =")))
    assert code == 1 and res["rdp"]["verdict"] == "timeout"
    assert "ISP block" in res["rdp"]["detail"]


def test_cgnat_scenario_reports_cgnat_and_dials_nothing(lab_factory):
    lab = lab_factory("cgnat")
    start_reflector(lab)
    reflector = f"http://{lab.wan_host_ip}:8765"
    cfg = write_config(lab, RDP_PROBE.replace(REFLECTOR, reflector))
    code, res, _ = probe(lab, cfg)
    r = res["rdp"]
    assert code == 1 and r["verdict"] == "cgnat"
    assert "no outside dial-back was attempted" in r["detail"]
    assert "probed" not in reflector_log(lab)  # the reflector was never asked to dial


def test_cgnat_from_report_skips_the_dial(lab):
    from natlink.config import load_config
    from natlink.probe.prober import probe_all
    from natlink.publicip import PublicIpReport

    start_reflector(lab)
    cfg = load_config(write_config(lab, RDP_PROBE))
    report = PublicIpReport(public_ipv4=None, public_ipv6=None, router_wan_ipv4="100.64.3.4", verdict="cgnat")
    results = lab.call("lan", probe_all, cfg, None, report)
    assert [r.verdict.value for r in results] == ["cgnat"]
    assert "100.64.3.4 is carrier-grade NAT" in results[0].detail
    assert "probed" not in reflector_log(lab)


SILENT_GATEWAY = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5351))
open(sys.argv[1] + ".bound", "w").close()
while True:
    s.recv(2048)
    with open(sys.argv[1], "a") as fh:
        fh.write("request\\n")
"""


def test_no_router_answering_neither_holds_the_probe_nor_claims_cgnat(lab):
    """NAT-PMP asked at lan2, which swallows every request: the router never answers (router.timeout = 30 s)."""
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    heard = os.path.join(lab.workdir, "gateway-heard")
    lab.popen("lan2", [sys.executable, "-c", SILENT_GATEWAY, heard])
    deadline = time.monotonic() + 10
    while not os.path.exists(heard + ".bound") and time.monotonic() < deadline:
        time.sleep(0.05)
    cfg = write_config(lab, RDP_PROBE)
    with open(cfg) as fh:
        text = fh.read()
    with open(cfg, "w") as fh:
        fh.write(text.replace(f'igd_url = "{lab.igd_url}"',
                              f'gateway = "{lab.lan2_ip}"\nprotocols = ["natpmp"]\ntimeout = 30'))
    code, res, _ = probe(lab, cfg)
    r = res["rdp"]
    assert code == 0 and r["verdict"] == "verified" and r["identity"] == "nonce"
    assert "the router's WAN address is unverified" in r["wan_address"] and "cgnat" not in r["detail"].lower()
    assert os.path.exists(heard)  # the router was asked, and the verdict came without its answer
    assert "probed" in reflector_log(lab)


def test_reflector_dials_only_the_requester(lab):
    start_reflector(lab)
    svc = lab.tcp_service("lan2", 3389)  # a third party the reflector must never reach

    def ask_with_spoofing():
        return rc.ask(REFLECTOR, [rc.PortAsk(3390, read=4)], dial_timeout=1)

    answer = lab.call("lan", ask_with_spoofing)
    assert answer.address == lab.wan_ip  # the NATed source, nothing else
    from natlink.probe.httpcall import call

    def spoof():
        body = json.dumps({"ports": [3389], "host": lab.lan2_ip}).encode()
        forwarded = call(REFLECTOR, "/v1/probe", method="POST", body=body, headers={"X-Forwarded-For": lab.lan2_ip})
        plain = call(REFLECTOR, "/v1/probe", method="POST", body=b'{"ports": [3389]}',
                     headers={"X-Forwarded-For": lab.lan2_ip, "Forwarded": f"for={lab.lan2_ip}"})
        return forwarded, plain

    named, plain = lab.call("lan", spoof)
    assert named.status == 400 and b"only dials back" in named.body
    assert plain.status == 200 and json.loads(plain.body)["address"] == lab.wan_ip
    assert svc.connections == 0


def test_token_mismatch_is_a_checker_error_not_closed(lab):
    start_reflector(lab, "--token-file", _token_file(lab, "right-token"))
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    wrong = _token_file(lab, "wrong-token", name="client.token")
    cfg = write_config(lab, RDP_PROBE + f'token_file = "{wrong}"\n' + INSECURE)
    code, res, proc = probe(lab, cfg)
    assert code == 1 and res["rdp"]["verdict"] == "checker-error"
    assert "rejected the token" in res["rdp"]["detail"]
    assert "wrong-token" not in proc.stdout + proc.stderr and "right-token" not in reflector_log(lab)
    right = _token_file(lab, "right-token", name="client2.token")
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE + f'token_file = "{right}"\n' + INSECURE))
    assert code == 0 and res["rdp"]["verdict"] == "verified"


def _token_file(lab, value: str, name: str = "reflector.token") -> str:
    path = os.path.join(lab.workdir, name)
    with open(path, "w") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)
    return path


def test_hairpin_is_reported_as_such(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    cfg = write_config(lab, RDP_PROBE + '[[probe]]\nname = "hp"\nmapping = "rdp"\nvia = "hairpin"\n')
    code, res, _ = probe(lab, cfg)
    assert res["rdp"]["verdict"] == "verified"
    hp = res["hp"]
    assert hp["via"] == "hairpin" and "not proof of reachability from outside" in hp["detail"]
    # the lab router's DNAT only matches the WAN interface: connections from inside do not loop back
    assert hp["verdict"] in ("refused", "timeout") and "no hairpin NAT" in hp["detail"]


# An echoip-style /port/N server, run as a process inside the wan namespace (so its dial-backs can only
# travel through the lab): dial back the requester, answer {"ip", "port", "reachable"}; "broken" -> HTTP 500.
ECHOIP_SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from natlink.probe.dial import dial_tcp
host, broken = sys.argv[1], sys.argv[2] == "1"
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if broken:
            self.send_response(500); self.send_header("Content-Length", "0"); self.end_headers(); return
        port = int(self.path.rsplit("/", 1)[1])
        reachable = dial_tcp(self.client_address[0], port, 2.0).outcome == "open"
        body = json.dumps({"ip": self.client_address[0], "port": port, "reachable": reachable}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer((host, 8080), H).serve_forever()
"""


@pytest.mark.parametrize("broken", [False, True])
def test_echoip_checker(lab, broken):
    lab.popen("wan", [sys.executable, "-c", ECHOIP_SERVER, lab.wan_host_ip, "1" if broken else "0"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            lab.call("wan", probes.http_get_status, lab.wan_host_ip, 8080, "/port/1")
            break
        except OSError:
            time.sleep(0.05)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    cfg = write_config(lab, f'[[probe]]\nmapping = "rdp"\nvia = "echoip"\nechoip = "http://{lab.wan_host_ip}:8080"\n')
    code, res, _ = probe(lab, cfg)
    r = res["rdp"]
    if broken:
        assert code == 1 and r["verdict"] == "checker-error" and "HTTP 500" in r["detail"], r
    else:  # echoip never reads, but natlink's own listener saw the connect from outside
        assert code == 0 and r["verdict"] == "verified" and r["identity"] == "listener", r


def test_human_output_and_no_listen(lab):
    start_reflector(lab)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    cfg = write_config(lab, RDP_PROBE)
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "probe", "--no-listen"], check=False)
    assert proc.returncode == 1  # no listener, nothing listening: the router forwards into a closed port
    assert "refused" in proc.stdout and "10.0.1.201:3389" in proc.stdout
    bad = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "probe", "nosuch"], check=False)
    assert bad.returncode == 2 and "is not a probe, a mapping or host:port" in bad.stderr


def test_reflector_unreachable_is_a_checker_error(lab):
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)  # no reflector runs
    code, res, _ = probe(lab, write_config(lab, RDP_PROBE))
    assert code == 1 and res["rdp"]["verdict"] == "checker-error"
    assert "refused the connection" in res["rdp"]["detail"]


# ---------------------------------------------------------------- UDP dial-back through the lab NAT

VOIP = """
[[mapping]]
name = "voip"
protocol = "udp"
external_port = 3391
internal_port = 3391
internal_ip = "10.0.1.201"
"""
VOIP_PROBE = f'[[probe]]\nmapping = "voip"\nreflector = "{REFLECTOR}"\ntimeout = 1.5\n'


def upnp_map_udp(lab, port: int) -> None:
    lab.run("lan", ["upnpc", "-u", lab.igd_url, "-e", "natlink:test", "-a", lab.lan_ip, str(port), str(port), "UDP"])


def udp_echo(lab, host: str, port: int):
    """A UDP echo service on 0.0.0.0:port in `host` (plain bind, as most services do); returns (peers, stop)."""
    sock = lab.call(host, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.1)
    peers: list[str] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except OSError:
                continue
            peers.append(peer[0])
            sock.sendto(b"ECHO " + data, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join()
        sock.close()

    return peers, close


def test_udp_port_free_natlink_answers_the_datagram_with_the_nonce(lab):
    start_reflector(lab)
    upnp_map_udp(lab, 3391)
    code, res, _ = probe(lab, write_config(lab, VOIP_PROBE, extra=VOIP))
    r = res["voip"]
    assert code == 0, r
    assert r["verdict"] == "verified" and r["identity"] == "nonce" and r["protocol"] == "udp"
    assert r["target"] == f"{lab.wan_ip}:3391"
    assert "natlink's own listener on 10.0.1.201:3391" in r["detail"]


def test_udp_echo_service_is_open(lab):
    start_reflector(lab)
    upnp_map_udp(lab, 3391)
    peers, close = udp_echo(lab, "lan", 3391)
    try:
        code, res, _ = probe(lab, write_config(lab, VOIP_PROBE, extra=VOIP))
    finally:
        close()
    r = res["voip"]
    assert code == 0 and r["verdict"] == "open" and r["identity"] == "unproven", r
    assert "UDP datagram from outside" in r["detail"] and "TCP" not in r["detail"]
    assert peers == [lab.wan_host_ip]  # the reflector's datagram came in through the mapping


def test_udp_no_mapping_gets_the_routers_port_unreachable(lab):
    start_reflector(lab)
    code, res, _ = probe(lab, write_config(lab, VOIP_PROBE, extra=VOIP))
    r = res["voip"]
    # no DNAT rule: the router's own kernel answers with ICMP port-unreachable, which UDP reports as refused
    assert code == 1 and r["verdict"] == "refused", r
    assert "ICMP port-unreachable" in r["detail"] and "natlink map" in r["detail"] and "reset" not in r["detail"]


def test_udp_silence_is_a_timeout_that_admits_it_cannot_tell_filtered_from_closed(lab):
    start_reflector(lab)
    upnp_map_udp(lab, 3391)
    lab.blocked_port(3391, "udp")
    code, res, _ = probe(lab, write_config(lab, VOIP_PROBE, extra=VOIP))
    r = res["voip"]
    assert code == 1 and r["verdict"] == "timeout", r
    assert "cannot tell filtered from closed" in r["detail"]
    assert r["elapsed"] <= 1.5 + 0.5


# ---------------------------------------------------------------- the reflector over TLS


def test_tls_reflector_trusted_via_ssl_cert_file_and_untrusted_is_a_checker_error(lab, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")  # throwaway, self-signed (its own CA)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=natlink-lab-reflector", "-addext",
                    f"subjectAltName=IP:{lab.wan_host_ip}"], check=True, capture_output=True, timeout=60)
    start_tls = [sys.executable, "-m", "natlink", "-v", "reflector", "--listen", f"{lab.wan_host_ip}:8765",
                 "--tls-cert", cert, "--tls-key", key]
    lab.popen("wan", start_tls, stderr=open(os.path.join(lab.workdir, "reflector.log"), "w"))
    url = f"https://{lab.wan_host_ip}:8765"
    deadline = time.monotonic() + 10
    while not _tls_up(lab, cert, lab.wan_host_ip):
        assert time.monotonic() < deadline, "TLS reflector did not start"
        time.sleep(0.05)
    upnp_map(lab, "lan", lab.lan_ip, 3389, 3390)
    cfg = write_config(lab, f'[[probe]]\nmapping = "rdp"\nreflector = "{url}"\n')
    proc = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "--json", "probe"], check=False, timeout=60,
                   env={"SSL_CERT_FILE": cert})
    r = json.loads(proc.stdout)["results"][0]
    assert proc.returncode == 0 and r["verdict"] == "verified" and r["identity"] == "nonce", r
    env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    plain = subprocess.run(["ip", "netns", "exec", lab.ns("lan"), sys.executable, "-m", "natlink", "-c", cfg,
                            "probe"], capture_output=True, text=True, timeout=60, env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stdout + plain.stderr
    head, detail = plain.stdout.strip().splitlines()  # the verdict line and one sentence, nothing else
    assert head.split()[:4] == ["rdp", "ipv4", f"{lab.wan_ip}:3390", "checker-error"], plain.stdout
    assert detail.strip().startswith(f"checker-error: TLS with {lab.wan_host_ip} failed: the certificate is not "
                                     "trusted") and "SSL_CERT_FILE" in detail, plain.stdout


def _tls_up(lab, cert: str, host: str) -> bool:
    def attempt() -> bool:
        ctx = ssl.create_default_context(cafile=cert)
        try:
            with socket.create_connection((host, 8765), timeout=1) as raw, ctx.wrap_socket(raw, server_hostname=host):
                return True
        except OSError:
            return False

    return lab.call("wan", attempt)
