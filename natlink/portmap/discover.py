"""Find out everything the router answers, in one burst.

NAT-PMP (public address request), PCP (ANNOUNCE) and SSDP (M-SEARCH unicast to the gateway, then multicast)
go out together; a known root-description URL (configured or cached) is fetched beside them. Answers are
collected for a short window (Tailscale's portmapper uses 250 ms): miniupnpd holds SSDP answers for tens of
ms while NAT-PMP answers in a few, so whoever stops at the first answer never sees UPnP, the only protocol
that can list the table. The window ends early once every protocol has answered or refused. When nothing
has answered by the window's end, the burst is resent on the RFC 6886/6887 schedule (250 ms doubling)
until the timeout, so a lossy link still finds the router; once something answers such a resend, the others
get GRACE more to answer the same burst.

SSDP answers from any host but the gateway are ignored (another LAN device must not become "the router");
a LOCATION naming another host than the gateway is re-pointed at the gateway (as Tailscale does).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from natlink.portmap import natpmp, pcp, ssdp
from natlink.portmap.udp import PORT

log = logging.getLogger(__name__)

WINDOW = 0.25
# After the window, answers to the same (re)sent burst still get this long once the first one arrived: a resend
# past the window would otherwise keep only the fastest protocol and call the others "not waited for".
GRACE = 0.05
# SSDP answers sent together (one daemon answering for several root devices: several IGDs) are read before the
# burst ends: each SSDP answer waits this long for another one.
SSDP_TOGETHER = 0.003
ANSWERED, REFUSED, SILENT, FAILED = "answered", "refused", "silent", "failed"


@dataclass
class Heard:
    """One protocol's outcome in the burst. ``elapsed``: seconds from the burst to the answer."""

    mapper: str
    state: str = SILENT  # answered | refused (ICMP / protocol says no) | failed | silent (nothing in the wait)
    elapsed: float | None = None
    detail: str = ""
    location: str | None = None  # UPnP: the root-description URL (at the gateway)
    location_source: str | None = None  # "config" | "cache" | "ssdp"
    locations: list[str] = field(default_factory=list)  # UPnP: every root description the gateway named, best first
    st: str = ""  # the SSDP search target that answered (IGD:2 is preferred over IGD:1)
    client: Any = None  # UPnP: the known URL's description, read in the burst (no second fetch)
    epoch: int | None = None
    external_ip: str | None = None
    result: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == ANSWERED


@dataclass
class Discovery:
    """What answered, and how long natlink waited (``waited``: so "silent" reads "no answer within N ms")."""

    heard: dict[str, Heard]
    waited: float = 0.0
    ignored: list[str] = field(default_factory=list)  # SSDP answers from other hosts

    @property
    def answered(self) -> list[str]:
        return [p for p, h in self.heard.items() if h.ok]

    def describe(self, mapper: str) -> str:
        h = self.heard[mapper]
        if h.ok:
            return f"answered in {h.elapsed * 1000:.0f} ms" if h.elapsed is not None else "answered"
        if h.state == SILENT:
            return f"no answer within {self.waited * 1000:.0f} ms (not waited for longer)"
        return h.detail or h.state


def choose(answered: list[str], preference: tuple[str, ...], *, cached: str | None = None,
           other_host: bool = False) -> list[str]:
    """PURE: the mappers (upnp / natpmp / pcp) to try, best first.

    Mappings for another LAN host need UPnP (it names the internal client) or PCP (THIRD_PARTY); NAT-PMP maps
    only to the sender. Otherwise the protocol used last time stays (natlink's records of NAT-PMP/PCP mappings
    belong to it), then the configured order.
    """
    order = [p for p in preference if p in answered]
    if other_host:
        order.sort(key=lambda p: {"upnp": 0, "pcp": 1}.get(p, 2))
    elif cached in order:
        order.remove(cached)
        order.insert(0, cached)
    return order


def repoint(location: str, gateway: str) -> str:
    """The same URL with the gateway as host (keeps port and path); unchanged when it already is."""
    if not location.lower().startswith("http://"):
        return location
    hostport, sep, path = location[7:].partition("/")
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") and ":" in hostport \
        else (hostport, "", "")
    if host.strip("[]") == gateway:
        return location
    return f"http://{gateway}{colon}{port}{sep}{path}"


@dataclass
class _Sockets:
    """The burst's sockets, one per protocol asked (None: not asked, or it could not be opened)."""

    natpmp: socket.socket | None = None
    pcp: socket.socket | None = None
    ssdp: socket.socket | None = None

    def all(self) -> list[socket.socket]:
        return [s for s in (self.natpmp, self.pcp, self.ssdp) if s is not None]

    def close(self) -> None:
        for s in self.all():
            s.close()


def _udp(gateway: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    _timestamps(sock)
    sock.connect((gateway, port))  # only the gateway's answers reach us; ICMP unreachable shows as refused
    return sock


def _ssdp_socket(bind_ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setblocking(False)
    _timestamps(sock)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
    try:
        if bind_ip:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind_ip))
        sock.bind((bind_ip, 0))
    except OSError:
        sock.bind(("", 0))
    return sock


@dataclass(frozen=True)
class _Start:
    """When the burst went out, on both clocks."""

    mono: float  # time.monotonic() at the burst
    wall: float  # time.time() at the burst, to compare with the kernel's receive timestamps


# The kernel stamps each datagram on arrival (SO_TIMESTAMPNS, CLOCK_REALTIME): an answer's "answered in N ms"
# stays the router's time when it is read late (RouterSession.start sends, the command loads, then collects).
# Python 3.11's socket module lacks the constant: Linux's generic value (not sparc's or parisc's).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", None) or (
    35 if sys.platform == "linux" and not os.uname().machine.startswith(("sparc", "parisc")) else None)
_TIMESTAMP_SPACE = socket.CMSG_SPACE(16) if _SO_TIMESTAMPNS is not None else 0


def _timestamps(sock: socket.socket) -> None:
    if _SO_TIMESTAMPNS is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            pass


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time (time.time() scale) from recvmsg's ancillary data, if it sent one."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("@qq", data[:16])
            return seconds + nanoseconds / 1e9
    return None


def _send(sock: socket.socket | None, payload: bytes, dest: tuple[str, int] | None = None) -> None:
    if sock is None:
        return
    try:
        sock.sendto(payload, dest) if dest else sock.send(payload)
    except OSError as exc:  # no route for multicast, etc.: the other requests may still work
        log.debug("discovery send to %s failed: %s", dest, exc)


def burst(gateway: str, lan_ip: str, mappers: tuple[str, ...], *, timeout: float,
          known_url: tuple[str, str] | None = None, open_url: Callable[[str], Any] | None = None,
          window: float = WINDOW, pmp_port: int = PORT, ssdp_port: int = 1900, multicast: bool = True) -> Discovery:
    """Ask over every mapper in ``mappers`` (upnp / natpmp / pcp) at once and collect the answers; see the
    module docstring.

    known_url: (url, "config" | "cache"); open_url reads it (raises when it does not work; router.py makes the
    client from what it returns after the burst).
    pmp_port / ssdp_port / multicast: other ports and no multicast for the in-process fake gateway's tests.
    """
    return Burst(gateway, lan_ip, mappers, timeout=timeout, known_url=known_url, open_url=open_url, window=window,
                 pmp_port=pmp_port, ssdp_port=ssdp_port, multicast=multicast).collect()


class Burst:
    """A burst in flight: the constructor sends it, collect() gathers the answers (see burst()).

    Between the two the caller may do other work: answers wait in the sockets' buffers, and the kernel's
    arrival stamp keeps each "answered in N ms" true however late they are read.
    """

    def __init__(self, gateway: str, lan_ip: str, mappers: tuple[str, ...], *, timeout: float,
                 known_url: tuple[str, str] | None = None, open_url: Callable[[str], Any] | None = None,
                 window: float = WINDOW, pmp_port: int = PORT, ssdp_port: int = 1900,
                 multicast: bool = True) -> None:
        self.gateway, self.lan_ip, self.window = gateway, lan_ip, window
        self.ssdp_port, self.multicast = ssdp_port, multicast
        self.start = _Start(time.monotonic(), time.time())
        self.deadline = self.start.mono + timeout
        self.heard = {p: Heard(p) for p in mappers}
        self.disc = Discovery(self.heard)
        self.socks = _Sockets()
        self._wake_r, self._wake_w = socket.socketpair()
        self.checker: threading.Thread | None = None
        try:
            for name in ("natpmp", "pcp", "upnp"):
                if name not in mappers:
                    continue
                try:
                    sock = _ssdp_socket(lan_ip) if name == "upnp" else _udp(gateway, pmp_port)
                except OSError as exc:  # e.g. no route to the gateway: that protocol cannot be asked at all
                    self.heard[name].state = FAILED
                    self.heard[name].detail = f"cannot reach {gateway}: {exc.strerror or exc}"
                    continue
                setattr(self.socks, "ssdp" if name == "upnp" else name, sock)
            if self.socks.ssdp is not None and known_url is not None and open_url is not None:
                self.checker = threading.Thread(target=_check_url, args=(self.heard["upnp"], known_url, open_url,
                                                                        self.start.mono, self._wake_w),
                                                daemon=True, name="natlink-igd-url")
                self.checker.start()
            self._send_all()
        except BaseException:
            self.close()
            raise

    def _send_all(self) -> None:
        heard, socks, gateway = self.heard, self.socks, self.gateway
        if heard.get("natpmp") and not heard["natpmp"].ok:
            _send(socks.natpmp, natpmp.encode_public_request())
        if heard.get("pcp") and not heard["pcp"].ok:
            _send(socks.pcp, pcp.encode_announce(self.lan_ip))
        if heard.get("upnp") and not heard["upnp"].ok:
            for st in ssdp.SEARCH_TARGETS[:2]:
                _send(socks.ssdp, ssdp.encode_search(st, f"{gateway}:{self.ssdp_port}"), (gateway, self.ssdp_port))
                if self.multicast:
                    _send(socks.ssdp, ssdp.encode_search(st), ssdp.SSDP_GROUP)

    def collect(self) -> Discovery:
        """Wait for the answers (the window, the early end, the resends), then close the sockets."""
        heard, disc, socks, checker = self.heard, self.disc, self.socks, self.checker
        started, window, deadline = self.start.mono, self.window, self.deadline
        try:
            resend_at, wait = started + 0.25, 0.5
            first_answer: float | None = None
            while True:
                now = time.monotonic()
                if all(h.state in (ANSWERED, REFUSED, FAILED) for h in heard.values()) and not _pending(checker, heard):
                    break
                collected = first_answer is not None and now >= max(started + window, first_answer + GRACE)
                if now >= deadline or (collected and disc.answered):
                    break
                if now >= resend_at:
                    self._send_all()
                    resend_at, wait = now + wait, wait * 2
                until = min(resend_at, deadline)
                if now < started + window:
                    until = min(until, started + window)  # look again when the window closes
                if first_answer is not None:
                    until = min(until, max(started + window, first_answer + GRACE))
                ready, _, _ = select.select([*socks.all(), self._wake_r], [], [], max(0.0, until - now))
                for sock in ready:
                    if sock is self._wake_r:
                        self._wake_r.recv(64)
                        continue
                    _receive(sock, socks, heard, disc, self.gateway, self.start)
                    while sock is socks.ssdp and select.select([sock], [], [], SSDP_TOGETHER)[0]:
                        _receive(sock, socks, heard, disc, self.gateway, self.start)  # several IGDs: read them all
                if first_answer is None and disc.answered:  # when it arrived, not when it was read
                    first_answer = min(time.monotonic(), started + min(heard[p].elapsed or 0.0 for p in disc.answered))
            disc.waited = time.monotonic() - started
            for h in heard.values():
                if h.state == SILENT and h.detail:
                    h.state = FAILED  # e.g. the known URL failed and SSDP stayed silent
            return disc
        finally:
            self.close()

    def close(self) -> None:
        self.socks.close()
        self._wake_r.close()
        self._wake_w.close()


def _pending(checker: threading.Thread | None, heard: dict[str, Heard]) -> bool:
    return checker is not None and checker.is_alive() and not heard["upnp"].ok


def _check_url(h: Heard, known: tuple[str, str], open_url: Callable[[str], Any], started: float,
               wake: socket.socket) -> None:
    url, source = known
    try:
        client = open_url(url)
    except Exception as exc:  # noqa: BLE001 - reported as the URL's outcome; SSDP may still answer
        log.info("UPnP: %s URL %s did not work (%s); waiting for SSDP", source, url, getattr(exc, "message", exc))
        if not h.ok:
            h.detail = f"the {source} URL {url} did not work ({getattr(exc, 'message', None) or exc})"
    else:
        if h.ok:  # SSDP was first; this client is not needed
            _close(client)
        else:
            h.client, h.location, h.location_source = client, url, source
            h.state, h.elapsed = ANSWERED, time.monotonic() - started
    try:
        wake.send(b"x")
    except OSError:
        pass


def _close(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _receive(sock: socket.socket, socks: _Sockets, heard: dict[str, Heard], disc: Discovery, gateway: str,
             started: _Start) -> None:
    try:
        data, ancillary, _flags, (addr, _port) = sock.recvmsg(2048, _TIMESTAMP_SPACE)
    except ConnectionRefusedError:
        h = heard["natpmp" if sock is socks.natpmp else "pcp"]
        if not h.ok:
            h.state, h.detail = REFUSED, f"{gateway}:{sock.getpeername()[1]} refused (nothing listens there)"
        return
    except OSError:
        return
    arrived = _arrival(ancillary)
    elapsed = arrived - started.wall if arrived is not None else time.monotonic() - started.mono
    if sock is socks.ssdp:
        _ssdp_answer(data, addr, heard["upnp"], disc, gateway, elapsed)
    elif sock is socks.natpmp:
        _natpmp_answer(data, heard["natpmp"], elapsed)
    else:
        _pcp_answer(data, heard["pcp"], elapsed)


def st_rank(st: str) -> int:
    """PURE: IGD:2 < IGD:1 < WANIPConnection:1 < WANPPPConnection:1 < anything else (lower is better)."""
    return next((i for i, target in enumerate(ssdp.SEARCH_TARGETS) if st.strip() == target), len(ssdp.SEARCH_TARGETS))


def _ssdp_answer(data: bytes, addr: str, h: Heard, disc: Discovery, gateway: str, elapsed: float) -> None:
    answer = ssdp.parse_answer(data, addr)
    if answer is None:
        return
    if addr != gateway:
        log.info("SSDP: ignored an answer from %s (not the gateway %s): %s", addr, gateway, answer.location)
        disc.ignored.append(f"{addr} ({answer.location})")
        return
    location = repoint(answer.location, gateway)
    if h.location_source in (None, "ssdp") and location not in h.locations:
        h.locations.append(location)  # several IGDs at the gateway: natlink chooses among all their services
    if h.ok and not (h.location_source == "ssdp" and st_rank(answer.st) < st_rank(h.st)):
        return  # already answered (a later IGD:2 answer still replaces an IGD:1 one)
    if not h.ok:
        h.state, h.elapsed = ANSWERED, elapsed
    h.location, h.location_source, h.st = location, "ssdp", answer.st
    h.locations.sort(key=lambda url: url != location)  # the best answer's description first


def _natpmp_answer(data: bytes, h: Heard, elapsed: float) -> None:
    try:
        reply = natpmp.decode_reply(data)
    except natpmp.MalformedReply:
        return
    if not isinstance(reply, natpmp.PublicAddressReply) or h.ok:
        return
    h.epoch, h.result, h.elapsed = reply.epoch, reply.result, elapsed
    if reply.result in (0, 3):  # 3: answered, but no external address (not connected / CGNAT)
        h.state = ANSWERED
        h.external_ip = reply.address or None
    else:
        h.state, h.detail = REFUSED, natpmp.result_error(reply.result).message


def _pcp_answer(data: bytes, h: Heard, elapsed: float) -> None:
    if data[:1] == b"\x00" and len(data) >= 4:  # a NAT-PMP-only gateway answers PCP with NAT-PMP's error
        if not h.ok:
            h.state, h.elapsed, h.detail = REFUSED, elapsed, "the gateway speaks NAT-PMP only (Unsupported Version)"
        return
    try:
        reply = pcp.decode_reply(data)
    except pcp.MalformedReply:
        return
    if reply.opcode != pcp.OP_ANNOUNCE or h.ok:
        return
    h.epoch, h.result, h.elapsed = reply.epoch, reply.result, elapsed
    if reply.result in (0, 7, 8):  # 7/8: answered, but no network / no resources right now
        h.state = ANSWERED
    else:
        h.state, h.detail = REFUSED, pcp.result_error(reply.result).message
