"""PROXY protocol v2 (HAProxy's binary header, https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt):
the address of the real client when the reflector runs behind a load balancer.

Only a connection from a configured trusted proxy may carry it; from anyone else the header is not read, so
a client talking to the reflector directly cannot name another address to be dialled (its bytes are then
just a malformed HTTP request). Pure parsing; the server reads exactly the header's bytes and no more, so
whatever follows (a TLS ClientHello, the HTTP request) stays in the socket.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PREFIX_LEN = 16  # signature, version/command, family/protocol, length
MAX_BODY = 512  # addresses plus TLVs; HAProxy sends far less


class ProxyHeaderError(ValueError):
    """Not a valid PROXY v2 header."""


@dataclass(frozen=True)
class ProxyHeader:
    command: str  # "PROXY" (relayed client) | "LOCAL" (the proxy's own health check)
    source: str | None  # the real client's address (None for LOCAL or an unspecified family)
    source_port: int | None = None


def body_length(prefix: bytes) -> int:
    """How many bytes follow the 16-byte prefix; ProxyHeaderError when the prefix is not PROXY v2."""
    if len(prefix) != PREFIX_LEN or not prefix.startswith(SIGNATURE):
        raise ProxyHeaderError("no PROXY v2 signature")
    if prefix[12] >> 4 != 2:
        raise ProxyHeaderError(f"PROXY protocol version {prefix[12] >> 4}, not 2")
    (length,) = struct.unpack("!H", prefix[14:16])
    if length > MAX_BODY:
        raise ProxyHeaderError(f"PROXY header of {length} bytes is too long")
    return length


def parse(prefix: bytes, body: bytes) -> ProxyHeader:
    """The header (prefix from body_length, then its body); ProxyHeaderError when malformed."""
    body_length(prefix)
    command = prefix[12] & 0x0F
    if command == 0:
        return ProxyHeader("LOCAL", None)
    if command != 1:
        raise ProxyHeaderError(f"unknown PROXY command {command}")
    family, proto = prefix[13] >> 4, prefix[13] & 0x0F
    if proto not in (0, 1, 2):  # UNSPEC, STREAM, DGRAM
        raise ProxyHeaderError(f"unknown transport {proto}")
    if family == 1:  # AF_INET: src, dst (4 bytes each), src port, dst port
        if len(body) < 12:
            raise ProxyHeaderError("PROXY IPv4 addresses are truncated")
        src, port = ipaddress.IPv4Address(body[0:4]), struct.unpack("!H", body[8:10])[0]
    elif family == 2:  # AF_INET6
        if len(body) < 36:
            raise ProxyHeaderError("PROXY IPv6 addresses are truncated")
        src6 = ipaddress.IPv6Address(body[0:16])
        src, port = (src6.ipv4_mapped or src6), struct.unpack("!H", body[32:34])[0]
    elif family == 0:
        return ProxyHeader("PROXY", None)
    else:  # AF_UNIX and anything else name no address that could be dialled back
        raise ProxyHeaderError(f"PROXY address family {family} cannot be dialled back")
    return ProxyHeader("PROXY", str(src), port)


def build(source: str, source_port: int, dest: str, dest_port: int) -> bytes:
    """A PROXY v2 header as a proxy would send it (tests and the bench use it to play the attacker)."""
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(dest)
    fam = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", source_port, dest_port)
    return SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def trusted(peer: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    ip = ipaddress.ip_address(peer)
    return any(ip.version == net.version and ip in net for net in networks)
