"""natlink listens on a free internal port itself, so a connect from outside can prove it reached this host:
every TCP connection (or UDP datagram) is answered with a random nonce the outside must read back.

The port is held only for the duration of one probe; a service starting meanwhile would fail to bind,
so the listener is kept short-lived. All listeners of a probe run share one selector thread (NonceHub), so
20 ports cost one thread, not 20.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import selectors
import socket
import threading
from dataclasses import dataclass, field

from natlink.probe.dial import family_of

log = logging.getLogger(__name__)

PREFIX = b"NATLINK-PROBE "
_SEND_FLAGS = socket.MSG_DONTWAIT | socket.MSG_MORE


def new_nonce_line() -> bytes:
    return PREFIX + secrets.token_hex(16).encode() + b"\n"


class NonceHub:
    """One thread and one selector answering every registered listener; close() when the probe run ends."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()  # held while serving, so a listener removed under it is never served again
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, listener: "NonceListener", sock: socket.socket) -> None:
        with self._lock:
            self._sel.register(sock, selectors.EVENT_READ, listener)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nonce-hub", daemon=True)
                self._thread.start()

    def remove(self, sock: socket.socket) -> None:
        with self._lock, contextlib.suppress(KeyError, ValueError):
            if not self._closed:  # a closed hub serves nobody: nothing to unregister
                self._sel.unregister(sock)

    def close(self) -> None:
        """Stop serving every listener at once (then each listener's stop() counts its queue and closes)."""
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        while True:
            events = self._sel.select()
            with self._lock:
                if self._closed:
                    return
                for key, _mask in events:
                    if key.data is None:  # the wake-up socket
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                    elif not key.data.stopping:  # stopped between select() and the lock: leave it alone
                        key.data.serve_ready()


@dataclass
class NonceListener:
    ip: str
    port: int
    protocol: str = "tcp"
    line: bytes = field(default_factory=new_nonce_line)
    peers: list[str] = field(default_factory=list)
    _sock: socket.socket | None = field(default=None, repr=False)
    _hub: NonceHub | None = field(default=None, repr=False)
    _own_hub: bool = field(default=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, hub: NonceHub | None = None) -> "NonceListener":
        """Bind and serve (on `hub`, or a hub of its own); raises OSError (EADDRINUSE: something listens;
        EADDRNOTAVAIL: not our address)."""
        kind = socket.SOCK_DGRAM if self.protocol == "udp" else socket.SOCK_STREAM
        sock = socket.socket(family_of(self.ip), kind | socket.SOCK_NONBLOCK)
        try:
            # TCP: SO_REUSEADDR skips TIME_WAIT leftovers only (Linux still refuses while another socket
            # listens). UDP has no TIME_WAIT, and there SO_REUSEADDR would let natlink bind beside a service
            # that set it too and steal its datagrams: never for UDP.
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.ip, self.port))
            if kind == socket.SOCK_STREAM:
                sock.listen(64)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._own_hub = hub is None
        self._hub = hub or NonceHub()
        self._hub.add(self, sock)
        return self

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.peers)

    def serve_ready(self) -> None:
        """Answer everything waiting (called by the hub when the socket is readable; never blocks)."""
        sock = self._sock
        assert sock is not None
        for _ in range(64):
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
                        # never blocks (a fresh socket's buffer takes the line); MSG_MORE holds it for the close,
                        # so the line and the FIN leave in one segment
                        conn.send(self.line, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return

    def _record(self, peer: tuple) -> None:
        with self._lock:
            self.peers.append(str(peer[0]))
        log.debug("nonce listener %s:%s answered %s", self.ip, self.port, peer[0])

    def request_stop(self) -> None:
        """Stop answering without waiting (stop many listeners at once, then stop each)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._sock is None:
            return
        if self._hub is not None:
            self._hub.remove(self._sock)
        # A checker that connects and hangs up at once (echoip) may still sit in the accept queue: count it.
        if self.protocol == "tcp":
            with contextlib.suppress(OSError):
                while True:
                    conn, peer = self._sock.accept()
                    conn.close()
                    self._record(peer)

    def stop(self) -> None:
        self.request_stop()
        if self._hub is not None and self._own_hub:
            self._hub.close()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()


def try_listen(ip: str, port: int, protocol: str,
               hub: NonceHub | None = None) -> tuple[NonceListener | None, str]:
    """(listener, "listening") when the port was free; (None, "in-use" | "not-local" | "error: ...") otherwise."""
    try:
        return NonceListener(ip, port, protocol).start(hub), "listening"
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return None, "in-use"
        if exc.errno == errno.EADDRNOTAVAIL:
            return None, "not-local"
        return None, f"error: {exc.strerror or exc}"
