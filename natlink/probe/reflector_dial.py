"""The reflector's dial-backs on its event loop: the same outcomes as natlink.probe.dial, without a thread each."""

from __future__ import annotations

import asyncio
import socket
import time

from natlink.probe.dial import UDP_PAYLOAD, DialOutcome, classify_error, family_of

READ_WINDOW = 2.0  # at most this long for the peer's first bytes (a nonce, a greeting)


async def dial_tcp(address: str, port: int, timeout: float, read: int = 0) -> DialOutcome:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    sock = socket.socket(family_of(address), socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
        except OSError as exc:  # TimeoutError is an OSError
            outcome, error = classify_error(exc)
            return DialOutcome(outcome, time.monotonic() - start, error=error)
        connected = time.monotonic() - start
        data = await _read_some(loop, sock, read, min(timeout, READ_WINDOW)) if read > 0 else b""
        return DialOutcome("open", connected, data)
    finally:
        sock.close()


async def _read_some(loop: asyncio.AbstractEventLoop, sock: socket.socket, limit: int, window: float) -> bytes:
    """Up to `limit` bytes until EOF or the window closes; a silent peer yields b""."""
    chunks: list[bytes] = []
    got = 0
    try:
        async with asyncio.timeout(window):
            while got < limit:
                chunk = await loop.sock_recv(sock, limit - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
    except (OSError, TimeoutError):  # a reset or the window: keep what we have
        pass
    return b"".join(chunks)


async def dial_udp(address: str, port: int, timeout: float, payload: bytes = UDP_PAYLOAD,
                   read: int = 512) -> DialOutcome:
    """One datagram and a wait for a reply; an ICMP port-unreachable is `refused`, silence `timeout`."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    sock = socket.socket(family_of(address), socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        try:
            sock.connect((address, port))  # a UDP connect sends nothing; it only filters replies
            async with asyncio.timeout(timeout):
                await loop.sock_sendall(sock, payload)
                data = await loop.sock_recv(sock, max(1, read))
        except OSError as exc:  # TimeoutError is an OSError
            outcome, error = classify_error(exc)
            return DialOutcome(outcome, time.monotonic() - start, error=error)
        return DialOutcome("open", time.monotonic() - start, data)
    finally:
        sock.close()
