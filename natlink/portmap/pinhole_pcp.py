"""PCP over IPv6: a MAP for this host's IPv6 address opens the router's IPv6 firewall (RFC 6887 section 11).

Sent from the pinholed address to the gateway's IPv6 address (the client field must equal the source, or the
router answers ADDRESS_MISMATCH). The codec is natlink.portmap.pcp's.
"""

from __future__ import annotations

from dataclasses import dataclass

from natlink.portmap import pcp
from natlink.portmap.base import RouterUnavailable
from natlink.portmap.pinhole_upnp import NoFirewallControl, PinholeError
from natlink.portmap.udp import exchange


@dataclass
class PcpPinholes:
    gateway6: str
    source: str
    timeout: float = 2.0
    mapper = "pcp"

    def _map(self, nonce: bytes, protocol: str, port: int, lifetime: int, third_party: str | None) -> pcp.Reply:
        other = third_party if third_party and third_party != self.source else None
        payload = pcp.encode_map(self.source, nonce, protocol, port, port if lifetime else 0, lifetime,
                                 external_ip="::", third_party=other)

        def parse(data: bytes) -> pcp.Reply | None:
            try:
                reply = pcp.decode_reply(data)
            except pcp.MalformedReply:
                return None
            return reply if reply.opcode == pcp.OP_MAP and (not reply.nonce or reply.nonce == nonce) else None

        try:
            return exchange(self.gateway6, payload, parse, timeout=self.timeout, what="PCP MAP over IPv6",
                            source=self.source)
        except RouterUnavailable as exc:
            raise NoFirewallControl(None, f"no PCP over IPv6 at [{self.gateway6}]:5351 ({exc.message})",
                                    exc.hint) from None

    def add(self, protocol: str, port: int, lease: int, nonce: str | None = None, *,
            third_party: str | None = None) -> tuple[str, int]:
        """Open (or renew, with the kept nonce) port for this host (or ``third_party``, another LAN host);
        (nonce, granted lifetime)."""
        raw = bytes.fromhex(nonce) if nonce else pcp.new_nonce()
        reply = self._map(raw, protocol, port, lease, third_party)
        if reply.result != 0:
            err = pcp.result_error(reply.result, f"IPv6 pinhole {protocol.upper()} [{self.source}]:{port}")
            raise PinholeError(reply.result, err.message, err.hint)
        # No NAT66: the outside port is the internal one. miniupnpd answers a renewal with port 0 (lab notes).
        if reply.external_port not in (0, port):
            raise PinholeError(None, f"the router offered outside port {reply.external_port} for an IPv6 pinhole "
                                     f"of port {port} (IPv6 has no port translation)", "see the router's log")
        return raw.hex(), reply.lifetime

    def delete(self, protocol: str, port: int, nonce: str, *, third_party: str | None = None) -> None:
        reply = self._map(bytes.fromhex(nonce), protocol, port, 0, third_party)
        if reply.result != 0:
            err = pcp.result_error(reply.result, f"deleting IPv6 pinhole {protocol.upper()} [{self.source}]:{port}")
            raise PinholeError(reply.result, err.message, err.hint)
