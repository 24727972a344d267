"""Listeners that turn router and host events into triggers: NAT-PMP/PCP announcements multicast by the router
to 224.0.0.1:5350 (RFC 6886 §3.2.1, RFC 6887 §14.1) and netlink address changes on this host.

Both only *trigger* a look at the router; the data in them is not trusted (any LAN host can send a multicast).
"""

from __future__ import annotations

import abc
import contextlib
import ipaddress
import logging
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from natlink.portmap import natpmp, pcp
from natlink.service.policy import ANNOUNCE, HOST_ADDRESS

log = logging.getLogger(__name__)

ALL_HOSTS = "224.0.0.1"
CLIENT_PORT = 5350  # where announcements go
SERVER_PORT = 5351  # where they come from

# linux/rtnetlink.h
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWADDR, RTM_DELADDR = 20, 21
IFA_ADDRESS, IFA_LOCAL = 1, 2
NETLINK_ROUTE = 0


@dataclass(frozen=True)
class Event:
    kind: str  # policy.ANNOUNCE | policy.HOST_ADDRESS
    detail: str  # for the log
    epoch: int | None = None
    external_ip: str | None = None


# --------------------------------------------------------------------------- pure parsers


def parse_announcement(data: bytes) -> Event | None:
    """A NAT-PMP public-address announcement (version 0, opcode 128) or a PCP ANNOUNCE response
    (version 2, opcode 0x80), read by the protocols' own codecs; None for anything else."""
    with contextlib.suppress(natpmp.MalformedReply):
        reply = natpmp.decode_reply(data)
        if not isinstance(reply, natpmp.PublicAddressReply) or reply.result != 0:
            return None
        return Event(ANNOUNCE, f"NAT-PMP announcement: external address {reply.address}, epoch {reply.epoch}",
                     reply.epoch, reply.address)
    with contextlib.suppress(pcp.MalformedReply):
        answer = pcp.decode_reply(data)
        if answer.opcode == pcp.OP_ANNOUNCE:
            return Event(ANNOUNCE, f"PCP ANNOUNCE, epoch {answer.epoch}", answer.epoch)
    return None


@dataclass(frozen=True)
class AddrChange:
    added: bool
    family: int
    ifindex: int
    address: str


def parse_netlink_addr(data: bytes) -> list[AddrChange]:
    """RTM_NEWADDR / RTM_DELADDR messages in one netlink datagram."""
    out: list[AddrChange] = []
    offset = 0
    while offset + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, offset)
        if length < 16 or offset + length > len(data):
            break
        if mtype in (RTM_NEWADDR, RTM_DELADDR) and length >= 24:
            family, _prefix, _flags, _scope, index = struct.unpack_from("=BBBBI", data, offset + 16)
            address = ""
            pos = offset + 24
            while pos + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                value = data[pos + 4:pos + alen]
                if atype in (IFA_LOCAL, IFA_ADDRESS) and len(value) in (4, 16):
                    address = str(ipaddress.ip_address(value))
                    if atype == IFA_LOCAL:
                        break  # IFA_LOCAL is the host's own address on point-to-point links
                pos += (alen + 3) & ~3
            out.append(AddrChange(mtype == RTM_NEWADDR, family, index, address))
        offset += (length + 3) & ~3
    return out


# --------------------------------------------------------------------------- listeners


class _Listener(abc.ABC):
    """A socket read on a daemon thread until stop(); each datagram is handed to handle()."""

    name = "listener"

    def __init__(self, on_event: Callable[[Event], None]) -> None:
        self.on_event = on_event
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = socket.socketpair()

    @abc.abstractmethod
    def open(self) -> socket.socket:
        """The bound socket to read (OSError: the listener does not start)."""

    @abc.abstractmethod
    def handle(self, data: bytes, sender: object) -> None:
        """One datagram from ``sender``."""

    def start(self) -> bool:
        try:
            self._sock = self.open()
        except OSError as exc:
            log.warning("%s not started: %s (polling still covers it)", self.name, exc.strerror or exc)
            return False
        self._thread = threading.Thread(target=self._loop, name=f"natlink-{self.name}", daemon=True)
        self._thread.start()
        return True

    def _loop(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            ready, _, _ = select.select([sock, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data, sender = sock.recvfrom(65535)
            except OSError:
                continue
            try:
                self.handle(data, sender)
            except Exception:  # a malformed packet must never end the listener
                log.debug("%s: cannot handle a datagram", self.name, exc_info=True)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._stop_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=1)
        for s in (self._sock, self._stop_r, self._stop_w):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()


class AnnouncementListener(_Listener):
    """UDP 5350 joined to 224.0.0.1 on the LAN interface; accepts datagrams from the gateway's port 5351."""

    name = "announcement listener"

    def __init__(self, on_event: Callable[[Event], None], lan_ip: str, gateway: str | None,
                 port: int = CLIENT_PORT) -> None:
        super().__init__(on_event)
        self.lan_ip = lan_ip
        self.gateway = gateway
        self.port = port

    def open(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # other NAT-PMP clients may listen too
            sock.bind(("", self.port))
            mreq = socket.inet_aton(ALL_HOSTS) + socket.inet_aton(self.lan_ip)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        except OSError:
            sock.close()
            raise
        log.info("listening for router announcements on %s:%s via %s", ALL_HOSTS, self.port, self.lan_ip)
        return sock

    def handle(self, data: bytes, sender: object) -> None:
        host, port = sender  # type: ignore[misc]
        if port != SERVER_PORT or (self.gateway and host != self.gateway):
            return
        event = parse_announcement(data)
        if event is not None:
            self.on_event(event)


class AddressListener(_Listener):
    """rtnetlink RTMGRP_IPV4_IFADDR (and IPv6 when asked): an address on this host came or went."""

    name = "address listener"

    def __init__(self, on_event: Callable[[Event], None], ipv6: bool = False) -> None:
        super().__init__(on_event)
        self.groups = RTMGRP_IPV4_IFADDR | (RTMGRP_IPV6_IFADDR if ipv6 else 0)

    def open(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            sock.bind((0, self.groups))
        except OSError:
            sock.close()
            raise
        return sock

    def handle(self, data: bytes, sender: object) -> None:
        changes = [c for c in parse_netlink_addr(data) if not _uninteresting(c.address)]
        if changes:
            detail = ", ".join(f"{'+' if c.added else '-'}{c.address or '?'}" for c in changes)
            self.on_event(Event(HOST_ADDRESS, f"host address change {detail}"))


def _uninteresting(address: str) -> bool:
    """Loopback and IPv6 link-local churn says nothing about reachability."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_link_local
