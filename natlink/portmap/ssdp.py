"""Find a UPnP Internet Gateway Device with our own SSDP M-SEARCH and stop at the first answer.

miniupnpc's discover() always waits its full delay (about 1 s); an IGD on the LAN answers in milliseconds.
The search goes both to the SSDP multicast group and straight to the gateway (UDA 1.1 unicast search,
answered without the MX delay).
"""

from __future__ import annotations

import logging
import select
import socket
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

SSDP_GROUP = ("239.255.255.250", 1900)
SEARCH_TARGETS = (
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)


@dataclass(frozen=True)
class SsdpAnswer:
    location: str
    st: str
    server: str
    source: str  # address the answer came from


def encode_search(st: str, host: str = "239.255.255.250:1900", mx: int = 1) -> bytes:
    return (f"M-SEARCH * HTTP/1.1\r\nHOST: {host}\r\nST: {st}\r\nMAN: \"ssdp:discover\"\r\nMX: {mx}\r\n\r\n"
            ).encode("ascii")


def parse_answer(data: bytes, source: str) -> SsdpAnswer | None:
    """An IGD search answer, or None for anything else (NOTIFYs, other devices, garbage)."""
    try:
        text = data.decode("utf-8", "replace")
    except Exception:  # pragma: no cover - decode with "replace" does not raise
        return None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.1 200"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    location, st = headers.get("location", ""), headers.get("st", "")
    if not location.lower().startswith("http://") or not any(t.split(":")[-2] in st for t in SEARCH_TARGETS):
        return None
    return SsdpAnswer(location, st, headers.get("server", ""), source)


def search(gateway: str | None, timeout: float, bind_ip: str = "") -> SsdpAnswer | None:
    """Send M-SEARCH (multicast and unicast to the gateway), resend at 250 ms doubling; first IGD answer wins."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        if bind_ip:
            try:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind_ip))
            except OSError:
                pass
        sock.bind((bind_ip, 0))
        wait = 0.25
        while time.monotonic() < deadline:
            for st in SEARCH_TARGETS[:2]:
                _send(sock, encode_search(st), SSDP_GROUP)
                if gateway:
                    _send(sock, encode_search(st, f"{gateway}:1900"), (gateway, 1900))
            resend_at = min(time.monotonic() + wait, deadline)
            wait *= 2
            while (left := resend_at - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                try:
                    data, (addr, _port) = sock.recvfrom(4096)
                except OSError:
                    continue
                answer = parse_answer(data, addr)
                if answer is not None:
                    log.debug("SSDP: %s answered %s (%s)", addr, answer.location, answer.st)
                    return answer
    return None


def _send(sock: socket.socket, payload: bytes, dest: tuple[str, int]) -> None:
    try:
        sock.sendto(payload, dest)
    except OSError as exc:  # no route for multicast etc.: the other search may still work
        log.debug("SSDP send to %s failed: %s", dest, exc)
