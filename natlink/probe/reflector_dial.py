"""The reflector's dial-backs on its event loop: the same outcomes as natlink.probe.dial, without a thread each.

A request's TCP dials run as one batch of plain loop callbacks (dial_tcp_many): no task, future or timeout
context per dial, so a port costs the loop its syscalls and little Python. A dial ends with a reset
(SO_LINGER 0) once its outcome is known: one packet instead of a FIN/ACK exchange, and no TIME_WAIT entry left
in the requester's router's connection table for every port probed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import Callable

from natlink.probe.dial import UDP_PAYLOAD, DialOutcome, classify_error, family_of

READ_WINDOW = 2.0  # at most this long for the peer's first bytes (a nonce, a greeting)
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


async def dial_tcp_many(address: str, asks: list[tuple[int, int]], timeout: float,
                        slots: asyncio.Semaphore | None = None) -> list[DialOutcome]:
    """Dial `address` on every (port, read) at once; each read waits for up to `read` bytes the peer sends first.
    A dial holds one of `slots` (the reflector's bound on concurrent dial-backs) from its start to its end."""
    if not asks:
        return []
    loop = asyncio.get_running_loop()
    all_done = loop.create_future()
    outcomes: list[DialOutcome | None] = [None] * len(asks)
    left = [len(asks)]

    def finished(i: int, outcome: DialOutcome) -> None:
        outcomes[i] = outcome
        if slots is not None:
            slots.release()
        left[0] -= 1
        if left[0] == 0 and not all_done.done():
            all_done.set_result(None)

    dials: list[_TcpDial] = []
    try:
        for i, (port, read) in enumerate(asks):
            if slots is not None:
                await slots.acquire()
            dial = _TcpDial(loop, address, port, read, timeout, lambda out, i=i: finished(i, out))
            dials.append(dial)
            dial.start()
        await all_done
    finally:  # cancelled (the server stops): close what is still open
        for dial in dials:
            dial.abort()
    return [o if o is not None else DialOutcome("error", 0.0, error="not dialled") for o in outcomes]


class _TcpDial:
    """One non-blocking connect, then a read of the peer's first bytes, as loop callbacks; `done` gets the
    outcome exactly once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str, port: int, read: int, timeout: float,
                 done: Callable[[DialOutcome], None]) -> None:
        self.loop, self.address, self.port, self.read, self.timeout = loop, address, port, read, timeout
        self.done: Callable[[DialOutcome], None] | None = done
        self.sock: socket.socket | None = None
        self.started = 0.0
        self.connected: float | None = None  # seconds from start to the connect
        self.chunks: list[bytes] = []
        self.got = 0
        self.timer: asyncio.TimerHandle | None = None
        self.watching = ""  # "w" while connecting, "r" while reading

    def start(self) -> None:
        self.started = time.monotonic()
        try:
            self.sock = socket.socket(family_of(self.address), socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            err = self.sock.connect_ex((self.address, self.port))
        except OSError as exc:
            self._fail(exc)
            return
        if err not in (0, errno.EINPROGRESS):
            self._fail(OSError(err, os.strerror(err)))
            return
        self.loop.add_writer(self.sock.fileno(), self._writable)
        self.watching = "w"
        self.timer = self.loop.call_later(self.timeout, self._expired)

    def _writable(self) -> None:
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(OSError(err, os.strerror(err)))
            return
        self.connected = time.monotonic() - self.started
        if self.read <= 0:
            self._end("open")
            return
        self.loop.remove_writer(self.sock.fileno())
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.watching = "r"
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(min(self.timeout, READ_WINDOW), self._expired)

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            chunk = self.sock.recv(self.read - self.got)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # a reset after the connect: keep what we have
            self._end("open")
            return
        if chunk:
            self.chunks.append(chunk)
            self.got += len(chunk)
        if not chunk or self.got >= self.read:
            self._end("open")

    def _expired(self) -> None:
        self.timer = None
        if self.watching == "w":
            self._fail(TimeoutError())
        else:  # the read window closed: a silent peer yields b""
            self._end("open")

    def _fail(self, exc: OSError) -> None:
        outcome, error = classify_error(exc)
        self._close(DialOutcome(outcome, time.monotonic() - self.started, error=error))

    def _end(self, outcome: str) -> None:
        self._close(DialOutcome(outcome, self.connected or 0.0, b"".join(self.chunks)))

    def abort(self) -> None:
        """Stop a dial still running (its batch was cancelled); its slot is given back like any other end."""
        if self.done is not None:
            self._close(DialOutcome("error", time.monotonic() - self.started, error="cancelled"))

    def _close(self, outcome: DialOutcome) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        sock, self.sock = self.sock, None
        if sock is not None:
            if self.watching == "w":
                self.loop.remove_writer(sock.fileno())
            elif self.watching == "r":
                self.loop.remove_reader(sock.fileno())
            self.watching = ""
            if self.connected is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            sock.close()
        done, self.done = self.done, None
        if done is not None:
            done(outcome)


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
