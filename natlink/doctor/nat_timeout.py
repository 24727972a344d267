"""`natlink doctor --measure-nat-timeout`: how long does the NAT keep an idle established TCP connection?

The reflector (outside) holds connections open as a line echo (``GET /v1/hold`` → 101 → echo). We open one
connection per idle time of a geometric schedule, all at once, leave each idle for its own time and then send
one line: an echo means the NAT still knew the connection; silence, a reset or a close means it forgot it.
Pings go out in schedule order, so the first dead connection ends the run: everything idle longer is dead too.
The answer is a bracket (alive after A s, gone after B s); with the 1.25 step the middle is within ±12 %.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from natlink.doctor.checks_host import RFC5382_MIN_IDLE, recommend_keepalive
from natlink.errors import NatlinkError

log = logging.getLogger(__name__)

ALIVE, SILENT, RESET, CLOSED = "alive", "no-echo", "reset", "closed"


@dataclass(frozen=True)
class Sample:
    idle: float  # seconds the connection was idle before the ping
    outcome: str  # alive | no-echo | reset | closed
    rtt: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"idle": round(self.idle, 2), "outcome": self.outcome,
                "rtt": None if self.rtt is None else round(self.rtt, 4)}


@dataclass(frozen=True)
class NatTimeout:
    alive_max: float | None  # longest idle time after which the connection still worked
    dead_min: float | None  # shortest idle time after which it was gone (None: never, up to `maximum`)
    maximum: float
    samples: tuple[Sample, ...] = field(default=())
    elapsed: float = 0.0

    @property
    def estimate(self) -> float | None:
        """The NAT idle timeout: the geometric middle of the bracket; None when nothing died."""
        if self.dead_min is None:
            return None
        if self.alive_max is None:
            return self.dead_min / 2
        return math.sqrt(self.alive_max * self.dead_min)

    @property
    def recommended(self) -> int:
        """Keepalive/heartbeat interval safely below what was seen to survive."""
        if self.dead_min is None:
            return recommend_keepalive(min(self.maximum, RFC5382_MIN_IDLE))
        return recommend_keepalive(self.alive_max if self.alive_max is not None else self.dead_min / 2)

    def summary(self) -> str:
        if self.dead_min is None:
            return (f"the NAT kept idle connections for the whole {self.maximum:.0f} s tested (raise --max to "
                    "look further; RFC 5382 asks for at least 7440 s)")
        if self.alive_max is None:
            return f"the NAT forgot idle connections within {self.dead_min:.1f} s (the shortest idle time tested)"
        return (f"the NAT forgets idle TCP connections after ~{self.estimate:.0f} s (alive after "
                f"{self.alive_max:.1f} s idle, gone after {self.dead_min:.1f} s)")

    def to_json(self) -> dict[str, Any]:
        return {"estimate": None if self.estimate is None else round(self.estimate, 1),
                "alive_max": self.alive_max, "dead_min": self.dead_min, "maximum": self.maximum,
                "recommended_keepalive": self.recommended, "elapsed": round(self.elapsed, 1),
                "samples": [s.to_json() for s in self.samples]}


def schedule(maximum: float, start: float = 2.0, factor: float = 1.25) -> list[float]:
    """PURE: idle times to test, growing by ``factor`` from ``start``, the last one exactly ``maximum``."""
    if maximum <= 0:
        return []
    times: list[float] = []
    t = min(start, maximum)
    while t < maximum:
        times.append(round(t, 2))
        t *= factor
    times.append(float(maximum))
    return times


def summarize(samples: list[Sample], maximum: float, elapsed: float = 0.0) -> NatTimeout:
    """PURE: the bracket from samples (a dead sample ends what counts; later ones are not trusted)."""
    alive_max = dead_min = None
    for s in sorted(samples, key=lambda s: s.idle):
        if s.outcome == ALIVE:
            alive_max = s.idle
        else:
            dead_min = s.idle
            break
    return NatTimeout(alive_max, dead_min, maximum, tuple(samples), elapsed)


# --------------------------------------------------------------------------- the client (I/O)


@dataclass
class _Held:
    sock: socket.socket
    idle_since: float


def _open_hold(url: str, token: str | None, lifetime: float, timeout: float) -> _Held:
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
    try:
        if parsed.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)  # our own keepalives would hide the timeout
        headers = [f"GET /v1/hold?max={int(lifetime)} HTTP/1.1", f"Host: {parsed.netloc}", "Connection: Upgrade",
                   "Upgrade: natlink-echo"]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)  # byte by byte: nothing after the headers may be swallowed
            if not chunk:
                raise NatlinkError(f"the reflector at {url} closed the connection without answering /v1/hold",
                                   "update the reflector to a natlink version with /v1/hold")
            head += chunk
            if len(head) > 8192:
                raise NatlinkError(f"the reflector at {url} sent an over-long answer", "is that URL a natlink reflector?")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            raise NatlinkError(f"the reflector at {url} refused /v1/hold: {status_line}", _hold_hint(parts))
        return _Held(sock, time.monotonic())
    except BaseException:
        sock.close()
        raise


def _hold_hint(parts: list[str]) -> str:
    code = parts[1] if len(parts) > 1 else ""
    return {"401": "set token_file in the [[probe]] section to the reflector's token",
            "403": "the token in the [[probe]] section does not match the reflector's",
            "404": "update the reflector: this one has no /v1/hold",
            "429": "too many held connections from your address; lower --max or wait a minute"}.get(
                code, "check the reflector's log")


def _ping(held: _Held, n: int, reply_timeout: float) -> tuple[str, float | None]:
    sock = held.sock
    line = f"natlink-idle-probe {n}\n".encode()
    started = time.monotonic()
    try:
        sock.settimeout(reply_timeout)
        sock.sendall(line)
        got = b""
        while not got.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                return CLOSED, None
            got += chunk
    except (TimeoutError, socket.timeout):
        return SILENT, None
    except OSError:  # ECONNRESET, EPIPE, EHOSTUNREACH: the NAT (or its absence) answered with an error
        return RESET, None
    return (ALIVE if got == line else CLOSED), time.monotonic() - started


def _abort(sock: socket.socket) -> None:
    try:  # RST instead of FIN: a dead connection must not linger retransmitting
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


def measure(url: str, token: str | None, maximum: float, *, start: float = 2.0, factor: float = 1.25,
            reply_timeout: float = 3.0, connect_timeout: float = 5.0,
            progress: Callable[[str], None] | None = None) -> NatTimeout:
    """Hold connections through the NAT and find how long an idle one survives (at most ``maximum`` s)."""
    times = schedule(maximum, start, factor)
    began = time.monotonic()
    held: list[_Held] = []
    samples: list[Sample] = []
    try:
        for _ in times:  # a reflector refusal surfaces here, before any waiting
            held.append(_open_hold(url, token, maximum + reply_timeout + 30, connect_timeout))
        if progress:
            progress(f"holding {len(held)} idle connections through the NAT via {url}; pinging after "
                     f"{times[0]:g} s … {times[-1]:g} s idle (up to ~{times[-1] + reply_timeout:.0f} s)")
        for i, (idle, h) in enumerate(zip(times, held)):
            delay = h.idle_since + idle - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            actual = time.monotonic() - h.idle_since
            outcome, rtt = _ping(h, i, reply_timeout)
            samples.append(Sample(actual, outcome, rtt))
            log.info("idle %.1f s: %s", actual, outcome)
            if progress:
                progress(f"  idle {actual:6.1f} s: {outcome}")
            if outcome != ALIVE:
                break
    finally:
        for h in held:
            _abort(h.sock)
    return summarize(samples, maximum, time.monotonic() - began)
