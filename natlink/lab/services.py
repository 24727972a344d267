"""Stand-in services on lab hosts (e.g. the "RDP" server a mapping should reach)."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from natlink.lab.netns import call_in_netns


def _listener(port: int, ipv6: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ipv6:  # its own socket beside an IPv4 one on the same port
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(("::" if ipv6 else "0.0.0.0", port))
    sock.listen(16)
    sock.settimeout(0.2)  # lets the accept loop notice stop() even if shutdown() does not wake it
    return sock


@dataclass
class TcpService:
    """Answers every connection with ``banner`` and closes it; counts connections.

    The listening socket is created inside the host's netns and then served from an
    ordinary thread: a socket keeps the namespace it was created in.
    """

    ns: str
    port: int
    banner: bytes = b"RDP-STANDIN\n"
    ipv6: bool = False
    connections: int = 0
    peers: list[tuple[str, int] | tuple[str, int, int, int]] = field(default_factory=list)
    _sock: socket.socket | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> TcpService:
        self._sock = call_in_netns(self.ns, _listener, self.port, self.ipv6)
        if self.port == 0:
            self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"tcp-service-{self.ns}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stopping.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self._lock:
                self.connections += 1
                self.peers.append(peer)
            with contextlib.suppress(OSError), conn:
                conn.settimeout(2)
                conn.sendall(self.banner)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Close the listener and join the thread; idempotent, never raises."""
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
