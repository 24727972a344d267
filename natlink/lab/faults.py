"""Router faults seen in the wild, injected into a running Lab: a mapping daemon that restarts keeping its
epoch, a reboot that moves the router's HTTP port, packet loss between host and router (nftables numgen: the
kernel here has no netem), and a second LAN host answering SSDP with a URL of its own.

Each one only touches what the lab created (its router namespace, its lan2 host).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from natlink.lab.netns import call_in_netns
from natlink.lab.router import nft

log = logging.getLogger(__name__)

LOSS_TABLE = "natlink_loss"
SSDP_GROUP = "239.255.255.250"


def keep_epoch_across_restarts(lab: Any) -> None:
    """miniupnpd with ``system_uptime=yes`` (many OpenWrt builds): the NAT-PMP/PCP epoch is the router's uptime.
    Restarts miniupnpd once to apply it (mappings vanish)."""
    lab.reconfigure_router(system_uptime=True)


def daemon_restart(lab: Any) -> None:
    """Stop miniupnpd, flush its chains, start it: every mapping is gone (OpenWrt does this on firewall reloads
    and WAN reconnects). With keep_epoch_across_restarts the epoch keeps growing, so nothing shows the loss."""
    lab.reconfigure_router()


def reboot_with_http_port(lab: Any, port: int) -> None:
    """A reboot after which the router's UPnP HTTP server listens on another port (many routers pick it at
    random): a cached root-description URL is refused from then on."""
    lab.reconfigure_router(http_port=port)


def loss_ruleset(percent: int) -> str:
    """PURE: drop ``percent`` % of NAT-PMP/PCP (udp 5351) and SSDP (udp 1900) packets arriving at the router."""
    if not 0 <= percent <= 100:
        raise ValueError(f"loss must be 0-100 %, not {percent}")
    share = "" if percent == 100 else f" numgen random mod 100 < {percent}"  # nft: "< 100" is out of range
    return (f"table inet {LOSS_TABLE} {{\n"
            "    chain input {\n"
            "        type filter hook input priority -10; policy accept;\n"
            f"        udp dport {{ 1900, 5351 }}{share} counter drop\n"
            "    }\n"
            "}\n")


@contextlib.contextmanager
def packet_loss(lab: Any, percent: int = 30) -> Iterator[None]:
    """While inside, the router's input drops ``percent`` % of the LAN's NAT-PMP/PCP and SSDP requests."""
    rtr = lab.ns("rtr")
    nft(rtr, "-f", "-", input=loss_ruleset(percent))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            nft(rtr, "delete", "table", "inet", LOSS_TABLE)


# --------------------------------------------------------------------------- a second host answering SSDP


def ssdp_reply(location: str, st: str) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {st}\r\nUSN: uuid:rogue::{st}\r\nEXT:\r\n"
            f"SERVER: rogue/1.0 UPnP/1.1\r\nLOCATION: {location}\r\n\r\n").encode("ascii")


def _search_target(data: bytes) -> str | None:
    text = data.decode("latin-1", "replace")
    if not text.startswith("M-SEARCH"):
        return None
    for line in text.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "st":
            return value.strip()
    return None


def _ssdp_socket(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 1900))
    membership = struct.pack("4s4s", socket.inet_aton(SSDP_GROUP), socket.inet_aton(ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


class _DescriptionHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class RogueSsdp:
    """A LAN host (lan2) that answers every M-SEARCH at once — before the router, which waits tens of ms — with
    a LOCATION on itself, serving a copy of the router's own root description there: a client that believes it
    sends its SOAP requests to lan2."""

    lab: Any
    host: str = "lan2"
    port: int = 5000
    answered: int = 0
    _sock: socket.socket | None = field(default=None, repr=False)
    _http: ThreadingHTTPServer | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def ip(self) -> str:
        return self.lab.lan2_ip

    @property
    def location(self) -> str:
        return f"http://{self.ip}:{self.port}/rootDesc.xml"

    def start(self) -> "RogueSsdp":
        body = self.lab.call("lan", lambda: urllib.request.urlopen(self.lab.igd_url, timeout=2).read())
        handler = type("Handler", (_DescriptionHandler,), {"body": body})
        ns = self.lab.ns(self.host)
        self._sock = call_in_netns(ns, _ssdp_socket, self.ip)
        self._http = call_in_netns(ns, ThreadingHTTPServer, ("0.0.0.0", self.port), handler)
        for target in (self._answer_searches, self._http.serve_forever):
            thread = threading.Thread(target=target, name=f"rogue-ssdp-{self.lab.tag}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _answer_searches(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            try:
                data, peer = sock.recvfrom(2048)
                st = _search_target(data)
                if st is not None:
                    sock.sendto(ssdp_reply(self.location, st), peer)
                    self.answered += 1
            except OSError as exc:
                log.debug("rogue SSDP: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            with contextlib.suppress(Exception):
                self._http.shutdown()
                self._http.server_close()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> "RogueSsdp":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
