"""natlink listens on a free internal port itself, so a connect from outside can prove it reached this host:
every TCP connection (or UDP datagram) is answered with a random nonce the outside must read back.

The port is held only for the duration of one probe; a service starting meanwhile would fail to bind,
so the listener is kept short-lived.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import socket
import threading
from dataclasses import dataclass, field

from natlink.probe.dial import family_of

log = logging.getLogger(__name__)

PREFIX = b"NATLINK-PROBE "


def new_nonce_line() -> bytes:
    return PREFIX + secrets.token_hex(16).encode() + b"\n"


@dataclass
class NonceListener:
    ip: str
    port: int
    protocol: str = "tcp"
    line: bytes = field(default_factory=new_nonce_line)
    peers: list[str] = field(default_factory=list)
    _sock: socket.socket | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> "NonceListener":
        """Bind and serve; raises OSError (EADDRINUSE: something listens; EADDRNOTAVAIL: not our address)."""
        kind = socket.SOCK_DGRAM if self.protocol == "udp" else socket.SOCK_STREAM
        sock = socket.socket(family_of(self.ip), kind)
        try:
            # TCP: SO_REUSEADDR skips TIME_WAIT leftovers only (Linux still refuses while another socket
            # listens). UDP has no TIME_WAIT, and there SO_REUSEADDR would let natlink bind beside a service
            # that set it too and steal its datagrams: never for UDP.
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.ip, self.port))
            if kind == socket.SOCK_STREAM:
                sock.listen(64)
            sock.settimeout(0.1)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name=f"nonce-{self.port}/{self.protocol}", daemon=True)
        self._thread.start()
        return self

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.peers)

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                if self.protocol == "udp":
                    _data, peer = sock.recvfrom(2048)
                    self._record(peer)  # before answering, as for TCP: whoever reads the nonce is already counted
                    with contextlib.suppress(OSError):
                        sock.sendto(self.line, peer)
                else:
                    conn, peer = sock.accept()
                    self._record(peer)
                    with contextlib.suppress(OSError), conn:
                        conn.settimeout(1.0)
                        conn.sendall(self.line)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                if self._stop.is_set():
                    break
                continue

    def _record(self, peer: tuple) -> None:
        with self._lock:
            self.peers.append(str(peer[0]))
        log.debug("nonce listener %s:%s answered %s", self.ip, self.port, peer[0])

    def request_stop(self) -> None:
        """Stop answering without waiting (stop many listeners at once, then join each)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._sock is None:
            return
        # A checker that connects and hangs up at once (echoip) may still sit in the accept queue: count it.
        if self.protocol == "tcp":
            with contextlib.suppress(OSError):
                self._sock.setblocking(False)
                while True:
                    conn, peer = self._sock.accept()
                    conn.close()
                    self._record(peer)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept()/recvfrom()

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()


def try_listen(ip: str, port: int, protocol: str) -> tuple[NonceListener | None, str]:
    """(listener, "listening") when the port was free; (None, "in-use" | "not-local" | "error: ...") otherwise."""
    try:
        return NonceListener(ip, port, protocol).start(), "listening"
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return None, "in-use"
        if exc.errno == errno.EADDRNOTAVAIL:
            return None, "not-local"
        return None, f"error: {exc.strerror or exc}"
