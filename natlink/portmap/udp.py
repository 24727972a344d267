"""Request/response over UDP to the gateway's port 5351 with the RFC 6886/6887 retransmission schedule.

``exchange_many`` pipelines: several requests in flight on one socket, each answer matched to its request by
the request's own parser (NAT-PMP: protocol and internal port; PCP: the nonce), each request resent on its own
schedule. The router works through them one by one, so what it saves is natlink's turn-around between them.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from natlink.portmap.base import RouterUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

PORT = 5351
FIRST_WAIT = 0.25  # RFC 6886 3.1 / RFC 6887 8.1.1: 250 ms, doubling
# Requests in flight at once: miniupnpd takes ~5 ms for each, so 8 queued are answered well inside the 250 ms
# after which a request is resent (more in flight would be resent while they wait in its queue).
IN_FLIGHT = 8


class NoAnswer(RouterUnavailable):
    pass


def exchange(gateway: str, payload: bytes, parse: Callable[[bytes], T | None], *, timeout: float,
             port: int = PORT, what: str = "request", source: str | None = None) -> T:
    """Send ``payload``; resend after 250, 500, 1000 ms ...; stop at ``timeout`` in total.

    ``parse`` returns None for datagrams that are not the answer (wrong opcode/nonce): keep waiting.
    Datagrams from anyone but gateway:port are ignored (RFC 6886 3.1).
    """
    answer = exchange_many(gateway, [(payload, parse)], timeout=timeout, port=port, what=what, source=source)[0]
    if isinstance(answer, NoAnswer):
        raise answer
    return answer


@dataclass
class _Request:
    """One request of exchange_many: its bytes, the parser that recognises its answer, and its resend schedule."""

    payload: bytes
    parse: Callable[[bytes], Any]
    deadline: float
    resend_at: float
    wait: float = FIRST_WAIT


def exchange_many(gateway: str, requests: Sequence[tuple[bytes, Callable[[bytes], Any]]], *, timeout: float,
                  port: int = PORT, what: str = "request", source: str | None = None,
                  in_flight: int = IN_FLIGHT) -> list[Any]:
    """exchange() for several requests on one socket, up to ``in_flight`` at a time, each on exchange()'s
    schedule from its own first send. An answer goes to the oldest request in flight whose parser accepts it.

    Returns, in order, each request's parsed answer or the NoAnswer it ended with; raises NoAnswer only when
    the gateway cannot be reached at all (no route, send refused by the kernel).
    """
    results: list[Any] = [None] * len(requests)
    waiting = deque(range(len(requests)))
    flying: dict[int, _Request] = {}  # insertion order = send order
    refused = 0
    with _connected(gateway, port, source) as sock:
        while waiting or flying:
            now = time.monotonic()
            while waiting and len(flying) < in_flight:
                i = waiting.popleft()
                flying[i] = _Request(*requests[i], deadline=now + timeout, resend_at=now)
            for i, req in list(flying.items()):
                if now >= req.deadline:
                    results[i] = NoAnswer(f"no {what} answer from {gateway}:{port} within {timeout:.1f} s",
                                          "check that the router is up and NAT-PMP/PCP is enabled")
                    del flying[i]
                elif now >= req.resend_at:
                    _send(sock, req.payload, gateway, port)
                    req.resend_at = min(now + req.wait, req.deadline)
                    req.wait *= 2
            if not flying:
                continue
            left = min(req.resend_at for req in flying.values()) - time.monotonic()
            ready, _, _ = select.select([sock], [], [], max(0.0, left))
            if not ready:
                continue
            try:
                data = sock.recv(1100)
            except ConnectionRefusedError:
                # ICMP port unreachable: nothing listens on 5351. A router that is starting up may answer the
                # retransmit, so give up only when two sends in a row were refused.
                refused += 1
                if refused >= 2:
                    error = NoAnswer(f"{gateway}:{port} refused the {what} (nothing listens there)",
                                     "NAT-PMP/PCP is switched off on the router, or it is not running")
                    for i in [*flying, *waiting]:
                        results[i] = error
                    flying.clear()
                    waiting.clear()
                continue
            except OSError:
                continue
            for i, req in flying.items():
                answer = req.parse(data)
                if answer is not None:
                    results[i] = answer
                    del flying[i]
                    break
            else:
                log.debug("ignored %d-byte datagram from %s (not the %s answer)", len(data), gateway, what)
    return results


def _connected(gateway: str, port: int, source: str | None) -> socket.socket:
    v6 = ":" in gateway  # PCP over IPv6 (pinholes); "fe80::1%eth0" carries its interface
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if source:  # PCP compares the client field with the source address: send from that address
            sock.bind((source, 0))
        target = socket.getaddrinfo(gateway, port, sock.family, socket.SOCK_DGRAM)[0][4] if v6 else (gateway, port)
        sock.connect(target)  # the kernel then drops datagrams from other sources
    except OSError as exc:  # socket.gaierror included
        sock.close()
        raise NoAnswer(f"cannot reach {gateway}:{port}: {exc.strerror or exc}",
                       "check router.gateway and the default route") from None
    return sock


def _send(sock: socket.socket, payload: bytes, gateway: str, port: int) -> None:
    try:
        sock.send(payload)
    except OSError as exc:
        raise NoAnswer(f"cannot send to {gateway}:{port}: {exc.strerror or exc}",
                       "check router.gateway and the default route") from None
