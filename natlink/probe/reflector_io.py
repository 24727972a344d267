"""The reflector's small socket and stream helpers: listen, exact reads, the answer bytes, the hold echo,
and the one log line per request."""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from natlink.probe.reflector_request import HEAD_MAX, HttpHead, RequestError, parse_head

HOLD_LINE_MAX = 4096
WRITE_TIMEOUT = 5.0  # a client that does not read its answer is dropped after this


@dataclass
class LogEntry:
    """The one journald-friendly line per request (key=value; never a token, only its number)."""

    client: str
    via: str = ""
    method: str = ""
    path: str = ""
    status: int = 0
    reason: str = ""
    token: str | None = None
    detail: str = ""

    def line(self, elapsed: float) -> str:
        parts = [f"client={self.client}"] + ([f"via={self.via}"] if self.via else [])
        parts += [f"method={self.method or '-'}", f"path={self.path or '-'}", f"status={self.status}",
                  f"ms={elapsed * 1000:.0f}"]
        if self.token:
            parts.append(f"token={self.token}")
        if self.reason:
            parts.append(f"reason={self.reason.replace(' ', '-')}")
        if self.detail:
            parts.append(self.detail)
        return " ".join(parts)


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # "[::]" serves IPv4 too (mapped addresses are unmapped)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(4096)
    except OSError:
        sock.close()
        raise
    return sock


async def recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes from the raw socket (never more: what follows belongs to TLS or HTTP)."""
    buf = b""
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, n - len(buf))
        if not chunk:
            raise asyncio.IncompleteReadError(buf, n)
        buf += chunk
    return buf


async def read_head(reader: asyncio.StreamReader) -> HttpHead:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise RequestError(431, f"the request head is over {HEAD_MAX} bytes", "send shorter headers",
                           reason="head-too-large") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise RequestError(400, "the request head ended early", "send a complete HTTP request") from None
        raise
    return parse_head(raw[:-4])


def response(status: int, doc: dict[str, Any] | bytes, headers: dict[str, str] | None = None,
              kind: str = "application/json") -> bytes:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (f"HTTP/1.1 {status} {phrase}\r\nServer: natlink-reflector\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n").encode() + body


async def write(writer: asyncio.StreamWriter, data: bytes, written: Callable[[], None] | None = None) -> None:
    """Send data; `written` runs once the transport has it (before waiting for a slow reader to take it)."""
    writer.write(data)
    if written is not None:
        written()
    async with asyncio.timeout(WRITE_TIMEOUT):
        await writer.drain()


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After an early error answer: half-close and swallow what the client still sends for a moment, so
    closing with unread input (which sends RST) cannot destroy the answer before the client reads it."""
    with contextlib.suppress(OSError, RuntimeError, TimeoutError):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(0.5):
            drained = 0
            while drained < 1 << 20 and (chunk := await reader.read(65536)):
                drained += len(chunk)


async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lifetime: float) -> str:
    """Write back every line received until EOF, an error, an over-long line, or the lifetime."""
    buf = b""
    try:
        async with asyncio.timeout(lifetime):
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return "client closed"
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    writer.write(line + b"\n")  # an echo, never more than was received
                await writer.drain()
                if len(buf) > HOLD_LINE_MAX:
                    return "line too long"
    except TimeoutError:
        return "lifetime reached"
    except OSError as exc:
        return f"connection error: {exc.strerror or exc}"
