"""One wall-clock deadline for a whole outbound HTTP request: connect, TLS handshake, request, answer.

A socket timeout bounds each read, not the request: a server that trickles one byte every 2 s keeps
every read under any timeout and can hold a request (and the service job waiting on it) for as long as
it likes. So a timer shuts the connection's socket down when the deadline passes; the blocked read
returns at once, and the caller reports a timeout however the HTTP library chose to fail (or not) on it.
Connect attempts get at most the time left. Name resolution is bounded by the system resolver only.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator


class RequestDeadline:
    """Wall-clock limit for one request; ``expired`` tells afterwards whether the timer cut it short.

    Every socket of the request is tracked as it is made (the raw one, and the TLS one before its
    handshake): the connection may hand its socket over to the response object (``Connection: close``),
    so the connection object cannot be asked for it when the time comes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._done = False

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def attempt_timeout(self, per_attempt: float | None) -> float:
        """The socket timeout for one connect attempt: never past the deadline."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError("the request deadline passed")
        return left if per_attempt is None else min(per_attempt, left)

    def track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
        return sock

    @contextlib.contextmanager
    def running(self) -> Iterator[RequestDeadline]:
        """While inside, shut every tracked socket down when the deadline passes (no timer for an endless one)."""
        if math.isinf(self.seconds):
            yield self
            return
        timer = threading.Timer(self.remaining(), self._fire)
        timer.daemon = True
        timer.start()
        try:
            yield self
        finally:
            with self._lock:
                self._done = True
            timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._socks:
                # socket.socket.shutdown, not SSLSocket.shutdown (that drops the TLS state under a running read);
                # a closed socket has fileno -1, so a descriptor number reused elsewhere is never touched.
                if sock.fileno() != -1:
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)

