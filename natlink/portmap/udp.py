"""Request/response over UDP to the gateway's port 5351 with the RFC 6886/6887 retransmission schedule."""

from __future__ import annotations

import logging
import select
import socket
import time
from typing import Callable, TypeVar

from natlink.portmap.base import RouterUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

PORT = 5351
FIRST_WAIT = 0.25  # RFC 6886 3.1 / RFC 6887 8.1.1: 250 ms, doubling


class NoAnswer(RouterUnavailable):
    pass


def exchange(gateway: str, payload: bytes, parse: Callable[[bytes], T | None], *, timeout: float,
             port: int = PORT, what: str = "request", source: str | None = None) -> T:
    """Send ``payload``; resend after 250, 500, 1000 ms ...; stop at ``timeout`` in total.

    ``parse`` returns None for datagrams that are not the answer (wrong opcode/nonce): keep waiting.
    Datagrams from anyone but gateway:port are ignored (RFC 6886 3.1).
    """
    deadline = time.monotonic() + timeout
    wait = FIRST_WAIT
    refused = 0
    v6 = ":" in gateway  # PCP over IPv6 (pinholes); "fe80::1%eth0" carries its interface
    with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            if source:  # PCP compares the client field with the source address: send from that address
                sock.bind((source, 0))
            target = socket.getaddrinfo(gateway, port, sock.family, socket.SOCK_DGRAM)[0][4] if v6 else (gateway, port)
            sock.connect(target)  # the kernel then drops datagrams from other sources
        except OSError as exc:  # socket.gaierror included
            raise NoAnswer(f"cannot reach {gateway}:{port}: {exc.strerror or exc}",
                           "check router.gateway and the default route") from None
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise NoAnswer(f"no {what} answer from {gateway}:{port} within {timeout:.1f} s",
                               "check that the router is up and NAT-PMP/PCP is enabled")
            try:
                sock.send(payload)
            except OSError as exc:
                raise NoAnswer(f"cannot send to {gateway}:{port}: {exc.strerror or exc}",
                               "check router.gateway and the default route") from None
            resend_at = min(now + wait, deadline)
            wait *= 2
            while True:
                left = resend_at - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                try:
                    data = sock.recv(1100)
                except ConnectionRefusedError:
                    # ICMP port unreachable: nothing listens on 5351. A router that is starting up may
                    # answer the retransmit, so give up only when two sends in a row were refused.
                    refused += 1
                    if refused >= 2:
                        raise NoAnswer(f"{gateway}:{port} refused the {what} (nothing listens there)",
                                       "NAT-PMP/PCP is switched off on the router, or it is not running") from None
                    time.sleep(max(0.0, min(resend_at - time.monotonic(), 0.05)))
                    continue
                except OSError:
                    continue
                result = parse(data)
                if result is not None:
                    return result
                log.debug("ignored %d-byte datagram from %s (not the %s answer)", len(data), gateway, what)
