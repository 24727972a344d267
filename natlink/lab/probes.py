"""Tiny stdlib clients the lab uses to decide "ready" (run them inside a netns via call_in_netns), and the
poll that waits for them (poll_ready).

They are deliberately minimal and independent of natlink's own protocol code, so a bug
there cannot make the lab look healthy.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from natlink.lab.errors import LabError
from natlink.lab.procs import Daemon


def http_get_status(host: str, port: int, path: str, timeout: float = 0.5) -> int:
    """Status code of a plain HTTP/1.0 GET, or raise OSError."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        first = sock.recv(64)
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise OSError(f"not an HTTP answer: {first!r}")
    return int(parts[1])


@dataclass(frozen=True)
class NatPmpAnswer:
    result: int  # 0 = success; 3 = network failure (no usable external address)
    epoch: int
    address: str


def natpmp_public_address(gateway: str, timeout: float = 0.25) -> NatPmpAnswer:
    """One RFC 6886 public-address request (no retries: callers poll)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((gateway, 5351))
        sock.send(b"\x00\x00")
        data = sock.recv(64)
    if len(data) < 12 or data[1] != 128:
        raise OSError(f"unexpected NAT-PMP answer {data!r}")
    _ver, _op, result, epoch = struct.unpack("!BBHI", data[:8])
    return NatPmpAnswer(result, epoch, socket.inet_ntoa(data[8:12]))


def dns_soa_ok(server: str, port: int, zone: str, timeout: float = 0.25) -> bool:
    """True if ``server`` answers an SOA query for ``zone`` authoritatively with NOERROR."""
    qid = secrets.randbits(16)
    header = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in zone.rstrip(".").split(".")) + b"\0"
    query = header + qname + struct.pack("!HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((server, port))
        sock.send(query)
        data = sock.recv(4096)
    if len(data) < 12:
        return False
    rid, flags, _qd, ancount, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    return rid == qid and flags & 0x000F == 0 and ancount >= 1


def tcp_read_banner(host: str, port: int, timeout: float = 2.0) -> bytes:
    """Connect, read until the peer closes (or ``timeout``), return the bytes.

    Raises ConnectionRefusedError / TimeoutError (socket.timeout) like a real client sees.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def poll_ready(what: str, checks: dict[str, Callable[[], bool]], daemons: dict[str, Daemon | None],
               timeout: float) -> None:
    """Poll ``checks`` (name -> passes?; OSError counts as not yet) until all pass. LabError naming what is not
    answering after ``timeout``, or at once with the log tail of a daemon that died meanwhile."""
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    while pending:
        for name, check in list(pending.items()):
            with contextlib.suppress(OSError):
                if check():
                    del pending[name]
        if not pending:
            return
        for label, daemon in daemons.items():
            died = daemon.exited_early() if daemon is not None else None
            if died is not None:
                raise LabError(f"{label} exited during start-up; log tail:\n{died}")
        if time.monotonic() > deadline:
            raise LabError(f"{what} not ready after {timeout}s: {', '.join(pending)} not answering")
        time.sleep(0.005)
