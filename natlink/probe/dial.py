"""One connect attempt and its raw outcome (open / refused / timeout / unreachable / error).

Shared by the reflector (dialling back a requester) and the hairpin check (dialling our own public address).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from dataclasses import dataclass

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
UDP_PAYLOAD = b"natlink-probe\n"


@dataclass(frozen=True)
class DialOutcome:
    outcome: str  # open | refused | timeout | unreachable | error
    elapsed: float
    data: bytes = b""
    error: str = ""


def family_of(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def classify_error(exc: OSError) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", ""
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout", ""
    if exc.errno in _UNREACHABLE:
        return "unreachable", exc.strerror or str(exc)
    return "error", exc.strerror or str(exc)


def dial_tcp(address: str, port: int, timeout: float, read: int = 0, read_timeout: float = 1.0) -> DialOutcome:
    """Connect to address:port; optionally read up to `read` bytes the peer sends first."""
    start = time.monotonic()
    sock = socket.socket(family_of(address), socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError as exc:
            outcome, error = classify_error(exc)
            return DialOutcome(outcome, time.monotonic() - start, error=error)
        connected = time.monotonic() - start
        data = _read_some(sock, read, read_timeout) if read > 0 else b""
        return DialOutcome("open", connected, data)
    finally:
        sock.close()


def _read_some(sock: socket.socket, limit: int, read_timeout: float) -> bytes:
    """Read until `limit` bytes, EOF, or the read window closes; a silent peer just yields b""."""
    deadline = time.monotonic() + read_timeout
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(limit - got)
        except OSError:  # timeout or reset after connect: keep what we have
            break
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def dial_udp(address: str, port: int, timeout: float, payload: bytes = UDP_PAYLOAD, read: int = 512) -> DialOutcome:
    """Send one datagram and wait for a reply. An ICMP port-unreachable shows up as `refused`;
    silence is `timeout`, which for UDP cannot tell "filtered" from "nobody replies"."""
    start = time.monotonic()
    sock = socket.socket(family_of(address), socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.send(payload)
            data = sock.recv(max(1, read))
        except OSError as exc:
            outcome, error = classify_error(exc)
            return DialOutcome(outcome, time.monotonic() - start, error=error)
        return DialOutcome("open", time.monotonic() - start, data)
    finally:
        sock.close()
