"""The reflector's dial-backs on its event loop: the same outcomes as natlink.probe.dial, without a thread each.

A request's TCP dials run as one batch of plain loop callbacks (TcpBatch): no task, future or timeout context
per dial, so a port costs the loop its syscalls and little Python. An open dial's socket is kept until the
answer is sent, so the requester does not wait for the closes. A peer that has already closed (natlink's nonce
listener sends its line with its FIN) gets a reset (SO_LINGER 0): one packet instead of a FIN/ACK exchange, and
no TIME_WAIT entry left on the requester's host and router for every port probed. A peer still open (a service
that greeted) gets an ordinary close, as any client would give it.
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


class TcpBatch:
    """Dial `address` on every (port, read) at once; each read waits for up to `read` bytes the peer sends first.
    ``outcomes = await batch.run()``, answer, then ``batch.close()``. A dial holds one of `slots` (the reflector's
    bound on concurrent dial-backs) until its outcome is known."""

    def __init__(self, address: str, asks: list[tuple[int, int]], timeout: float,
                 slots: asyncio.Semaphore | None = None) -> None:
        self.address, self.asks, self.timeout, self.slots = address, asks, timeout, slots
        self.outcomes: list[DialOutcome | None] = [None] * len(asks)
        self._dials: list[_TcpDial] = []
        self._left = len(asks)
        self._all_done: asyncio.Future[None] | None = None

    async def run(self) -> list[DialOutcome]:
        loop = asyncio.get_running_loop()
        self._all_done = loop.create_future()
        family = family_of(self.address)
        if self._left:
            for i, (port, read) in enumerate(self.asks):
                if self.slots is not None:
                    await self.slots.acquire()
                dial = _TcpDial(loop, family, self.address, port, read, self.timeout,
                                lambda out, i=i: self._finished(i, out))
                self._dials.append(dial)
                dial.start()
            await self._all_done
        return [o if o is not None else DialOutcome("error", 0.0, error="not dialled") for o in self.outcomes]

    def _finished(self, i: int, outcome: DialOutcome) -> None:
        self.outcomes[i] = outcome
        if self.slots is not None:
            self.slots.release()
        self._left -= 1
        if self._left == 0 and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    def close(self) -> None:
        """Close every dial (a reset where the peer closed first) and stop any still running (the request ended
        or was cancelled)."""
        for dial in self._dials:
            dial.close()


class _TcpDial:
    """One non-blocking connect, then a read of the peer's first bytes, as loop callbacks; `done` gets the
    outcome exactly once. A connected socket stays open until close()."""

    __slots__ = ("loop", "family", "address", "port", "read", "timeout", "done", "sock", "started", "connected",
                 "chunks", "got", "timer", "watching", "peer_closed")

    def __init__(self, loop: asyncio.AbstractEventLoop, family: int, address: str, port: int, read: int,
                 timeout: float, done: Callable[[DialOutcome], None]) -> None:
        self.loop, self.family, self.address, self.port, self.read = loop, family, address, port, read
        self.timeout = timeout
        self.done: Callable[[DialOutcome], None] | None = done
        self.sock: socket.socket | None = None
        self.started = 0.0
        self.connected: float | None = None  # seconds from start to the connect
        self.chunks: list[bytes] = []
        self.got = 0
        self.timer: asyncio.TimerHandle | None = None
        self.watching = ""  # "w" while connecting, "r" while reading
        self.peer_closed = False  # the peer sent its FIN: end with a reset

    def start(self) -> None:
        self.started = time.monotonic()
        try:
            sock = self.sock = socket.socket(self.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            err = sock.connect_ex((self.address, self.port))
        except OSError as exc:
            self._fail(exc)
            return
        if err not in (0, errno.EINPROGRESS):
            self._fail(OSError(err, os.strerror(err)))
            return
        try:  # a LAN or loopback peer has often completed the handshake within connect(): skip the wait for it
            sock.getpeername()
        except OSError:
            self.loop.add_writer(sock.fileno(), self._writable)
            self.watching = "w"
            self.timer = self.loop.call_later(self.timeout, self._expired)
            return
        self._connected()

    def _writable(self) -> None:
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(OSError(err, os.strerror(err)))
            return
        self._unwatch()
        self._connected()

    def _connected(self) -> None:
        assert self.sock is not None
        self.connected = time.monotonic() - self.started
        if self.read <= 0:
            self._end()
            return
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.watching = "r"
        self.timer = self.loop.call_later(min(self.timeout, READ_WINDOW), self._expired)

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            chunk = self.sock.recv(self.read - self.got)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # a reset after the connect: keep what we have
            self._end()
            return
        if chunk:
            self.chunks.append(chunk)
            self.got += len(chunk)
        if not chunk:
            self.peer_closed = True
            self._end()
        elif self.got >= self.read:
            self.peer_closed = self._at_eof()
            self._end()

    def _at_eof(self) -> bool:
        """Has the peer closed after what we read (its FIN came with its line)? Reads nothing."""
        assert self.sock is not None
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def _expired(self) -> None:
        self.timer = None
        if self.watching == "w":
            self._fail(TimeoutError())
        else:  # the read window closed: a silent peer yields b""
            self._end()

    def _fail(self, exc: OSError) -> None:
        outcome, error = classify_error(exc)
        self._report(DialOutcome(outcome, time.monotonic() - self.started, error=error))
        self.close()  # never connected: closing sends nothing

    def _end(self) -> None:
        self._report(DialOutcome("open", self.connected or 0.0, b"".join(self.chunks)))

    def _unwatch(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.sock is not None:
            if self.watching == "w":
                self.loop.remove_writer(self.sock.fileno())
            elif self.watching == "r":
                self.loop.remove_reader(self.sock.fileno())
        self.watching = ""

    def _report(self, outcome: DialOutcome) -> None:
        self._unwatch()
        done, self.done = self.done, None
        if done is not None:
            done(outcome)

    def close(self) -> None:
        if self.done is not None:  # still running: the batch was cancelled
            self._report(DialOutcome("error", time.monotonic() - self.started, error="cancelled"))
        # the FIN may have come after the line was read (a loaded machine splits them): look once more
        if self.sock is not None and self.connected is not None and not self.peer_closed:
            self.peer_closed = self._at_eof()
        sock, self.sock = self.sock, None
        if sock is not None:
            if self.connected is not None and self.peer_closed:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            sock.close()


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
