"""A probe when no router answers: the dial-back does not wait for the router's WAN address, and the verdict
says only what was seen (the WAN address is unverified, never "cgnat").

Everything on loopback: a real reflector, natlink's real nonce listener, and a real RouterSession asking NAT-PMP
at a loopback address of its own (127.x.y.z, port 5351), where a UDP socket swallows the requests and never answers (no SSDP, no multicast).
"""

from __future__ import annotations

import os
import random
import socket
import threading

import pytest

from natlink.config import load_config
from natlink.portmap.session import RouterSession
from natlink.probe.prober import probe_all
from natlink.probe.wan_facts import cgnat_sentence
from natlink.probe.reflector import Reflector, ReflectorSettings

ROUTER_TIMEOUT = 30  # the router look would hold a waiting probe this long


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentGateway:
    """NAT-PMP's port on loopback, held by a socket that reads every request and answers none."""

    def __init__(self) -> None:
        # NAT-PMP's port is fixed, so each gateway takes a loopback address of its own: two runs at once don't clash
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            try:
                self.sock.bind((self.address, 5351))
                break
            except OSError:
                continue
        else:
            raise OSError("no free loopback address for the silent gateway")
        self.sock.settimeout(0.1)
        self.heard = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._swallow, daemon=True)
        self._thread.start()

    def _swallow(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(2048)
                self.heard.set()
            except TimeoutError:
                continue

    def close(self) -> None:
        """Gone: the next retransmit is refused (ICMP), so the router look ends at once."""
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def silent_gateway():
    gw = SilentGateway()
    yield gw
    gw.close()


@pytest.fixture
def reflector():
    r = Reflector(ReflectorSettings(host="127.0.0.1", port=0, rate=0)).start()
    yield r
    r.stop()


def _config(tmp_path, gateway: str, reflector_url: str, external: int, internal: int) -> str:
    path = os.path.join(tmp_path, "natlink.toml")
    with open(path, "w") as fh:
        fh.write(f"""
[router]
gateway = "{gateway}"
lan_ip = "127.0.0.1"
protocols = ["natpmp"]
timeout = {ROUTER_TIMEOUT}
[[mapping]]
name = "svc"
protocol = "tcp"
external_port = {external}
internal_port = {internal}
internal_ip = "127.0.0.1"
[[probe]]
mapping = "svc"
reflector = "{reflector_url}"
timeout = 1
[service]
state_dir = "{tmp_path}/state"
""")
    return path


def _still_asking(session: RouterSession) -> bool:
    """The session's lock is held while the router is being discovered: True = the router look is unfinished."""
    got = session._lock.acquire(blocking=False)
    if got:
        session._lock.release()
    return not got and not session.is_open


def test_verified_without_waiting_for_a_silent_router(tmp_path, silent_gateway, reflector):
    port = _free_tcp_port()  # the reflector dials 127.0.0.1:port, where natlink's listener holds the nonce
    cfg = load_config(_config(tmp_path, silent_gateway.address, reflector.url, port, port))
    session = RouterSession.for_config(cfg)
    results = probe_all(cfg, router=session)
    # Ordering: the verdict came while the router was still being asked (it has not answered, or failed).
    assert _still_asking(session) and silent_gateway.heard.is_set()
    silent_gateway.close()
    session.close()
    [r] = results
    assert r.verdict.value == "verified"
    assert "unverified" in r.extra["wan_address"] and "cgnat" not in r.detail.lower()


def test_a_failed_dial_back_never_claims_cgnat_when_the_router_is_silent(tmp_path, silent_gateway, reflector):
    internal, external = _free_tcp_port(), _free_tcp_port()  # nothing listens on the external port: refused
    cfg = load_config(_config(tmp_path, silent_gateway.address, reflector.url, external, internal))
    session = RouterSession.for_config(cfg)
    results = probe_all(cfg, router=session)
    assert _still_asking(session)  # waited at most the probe's own budget for the router, not its timeout
    silent_gateway.close()
    session.close()
    [r] = results
    assert r.verdict.value == "refused" and r.outcome == "refused"  # the dial-back was made and reported as seen
    assert "the router's WAN address is unverified" in r.extra["wan_address"]
    assert "cgnat" not in r.detail.lower()


CGN = "your router's WAN address 100.64.0.2 is carrier-grade NAT"


@pytest.mark.parametrize("cgnat,dialled,outcome,expected", [
    (None, True, "timeout", None),
    (CGN, False, "error", CGN + " (no outside dial-back was attempted)"),
    (CGN, True, "timeout", CGN + " (the router said so after the outside dial-back had started; it got: timeout)"),
    (CGN, True, "open", None),  # the outside reached this host: a late router answer does not outvote that
])
def test_cgnat_sentence_says_whether_the_dial_back_was_attempted(cgnat, dialled, outcome, expected):
    assert cgnat_sentence(cgnat, dialled, outcome) == expected
