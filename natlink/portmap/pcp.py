"""PCP (RFC 6887): packet codec (pure) and a small client for ANNOUNCE and MAP over UDP 5351.

A MAP is identified by its 12-byte nonce: renewals and deletions must reuse it, so natlink keeps the
nonce in its state. The epoch in every answer detects a gateway that lost its mappings (RFC 6887 8.5).
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from natlink.errors import NatlinkError
from natlink.portmap.base import AddRequest, Granted, Mapping, MappingError, outcome
from natlink.portmap.granted import other_port_refusal
from natlink.portmap.results import NO_EXTERNAL_FIX, NO_RESOURCES_FIX, OTHER_PORT_FIX, ResultTable
from natlink.portmap.results import result_error as _result_error
from natlink.portmap.udp import PORT, exchange, exchange_many

VERSION = 2
OP_ANNOUNCE = 0
OP_MAP = 1
PROTO_NUM = {"tcp": 6, "udp": 17}
NUM_PROTO = {v: k for k, v in PROTO_NUM.items()}
HEADER = 24
MAP_BODY = 36
OPT_THIRD_PARTY = 1  # RFC 6887 13.1: map for another internal host; mandatory to process (code < 128)

RESULTS: ResultTable = {
    0: ("SUCCESS", "", ""),
    1: ("UNSUPP_VERSION", "the gateway does not speak PCP version 2", "use UPnP or NAT-PMP (router.protocols)"),
    2: ("NOT_AUTHORIZED", "the gateway's policy refuses this mapping (PCP switched off, port not allowed, or a "
        "mapping owned by another host/nonce)", "use a high external_port, or allow it in the router's settings"),
    3: ("MALFORMED_REQUEST", "the gateway could not parse natlink's request", "report this as a natlink bug"),
    4: ("UNSUPP_OPCODE", "the gateway does not support this PCP request", "use UPnP or NAT-PMP (router.protocols)"),
    5: ("UNSUPP_OPTION", "the gateway does not support a PCP option natlink sent", "report this as a natlink bug"),
    6: ("MALFORMED_OPTION", "the gateway rejected a PCP option", "report this as a natlink bug"),
    7: ("NETWORK_FAILURE", "the gateway has no working external address (not connected, or behind CGNAT/another "
        "NAT)", NO_EXTERNAL_FIX),
    8: ("NO_RESOURCES", "the gateway is out of mapping resources", NO_RESOURCES_FIX),
    9: ("UNSUPP_PROTOCOL", "the gateway cannot map this transport protocol", "use tcp or udp"),
    10: ("USER_EX_QUOTA", "this host has used up its mapping quota on the gateway",
         "remove unused mappings (natlink unmap, or other clients')"),
    11: ("CANNOT_PROVIDE_EXTERNAL", "the gateway cannot give the requested external port", OTHER_PORT_FIX),
    12: ("ADDRESS_MISMATCH", "the gateway saw another source address than the one natlink put in the request "
         "(a NAT between this host and the gateway)", "map the port on the router this host is directly behind"),
    13: ("EXCESSIVE_REMOTE_PEERS", "the gateway cannot create the filters asked for", "report this as a natlink bug"),
}


class MalformedReply(ValueError):
    """A datagram that is not a valid PCP answer."""


@dataclass(frozen=True)
class Reply:
    """A PCP answer (RFC 6887): the common header, and for MAP the mapping the server granted."""

    opcode: int
    result: int
    lifetime: int
    epoch: int
    nonce: bytes = b""
    protocol: str = ""
    internal_port: int = 0
    external_port: int = 0
    external_ip: str = ""
    third_party: str | None = None  # the THIRD_PARTY address the server echoed, if it did


def _v6(addr: str) -> bytes:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv4Address):
        ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    return ip.packed


def _from_v6(raw: bytes) -> str:
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def new_nonce() -> bytes:
    return os.urandom(12)


def encode_header(opcode: int, lifetime: int, client_ip: str) -> bytes:
    return struct.pack("!BBHI", VERSION, opcode & 0x7F, 0, lifetime) + _v6(client_ip)


def encode_announce(client_ip: str) -> bytes:
    return encode_header(OP_ANNOUNCE, 0, client_ip)


def encode_map(client_ip: str, nonce: bytes, protocol: str, internal_port: int, external_port: int,
               lifetime: int, external_ip: str = "0.0.0.0", third_party: str | None = None) -> bytes:
    """MAP request (60 bytes for IPv4, 80 with THIRD_PARTY). lifetime 0 deletes the mapping identified by the
    nonce. ``third_party``: the other LAN host the mapping is for (the router must allow it)."""
    if len(nonce) != 12:
        raise ValueError("a PCP nonce is 12 bytes")
    if protocol not in PROTO_NUM:
        raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
    if not (0 <= internal_port <= 0xFFFF and 0 <= external_port <= 0xFFFF and 0 <= lifetime <= 0xFFFFFFFF):
        raise ValueError("port or lifetime out of range")
    body = nonce + struct.pack("!B3xHH", PROTO_NUM[protocol], internal_port, external_port) + _v6(external_ip)
    if third_party is not None:
        body += struct.pack("!BBH", OPT_THIRD_PARTY, 0, 16) + _v6(third_party)
    return encode_header(OP_MAP, lifetime, client_ip) + body


def _options(data: bytes) -> dict[int, bytes]:
    """Options after the opcode body; a truncated option ends the list (RFC 6887 7.3)."""
    out: dict[int, bytes] = {}
    at = 0
    while at + 4 <= len(data):
        code, _, length = struct.unpack_from("!BBH", data, at)
        value = data[at + 4:at + 4 + length]
        if len(value) < length:
            break
        out.setdefault(code, value)
        at += 4 + length + (-length % 4)
    return out


def decode_reply(data: bytes) -> Reply:
    """Parse a PCP answer; raise MalformedReply (never anything else) when it is not one."""
    if len(data) < HEADER:
        raise MalformedReply(f"{len(data)}-byte datagram is too short for a PCP answer (at least {HEADER})")
    if len(data) % 4 or len(data) > 1100:
        raise MalformedReply(f"{len(data)}-byte datagram: PCP messages are a multiple of 4 bytes, at most 1100")
    version, r_op, _, result, lifetime, epoch = struct.unpack_from("!BBBBII", data)
    if version != VERSION:
        raise MalformedReply(f"version {version}, expected {VERSION}")
    if not r_op & 0x80:
        raise MalformedReply("R bit clear: this is a request, not an answer")
    opcode = r_op & 0x7F
    if opcode == OP_MAP:
        if len(data) < HEADER + MAP_BODY:
            if result != 0:  # an error answer may be cut short; keep what there is
                return Reply(opcode, result, lifetime, epoch)
            raise MalformedReply(f"{len(data)}-byte MAP answer, expected at least {HEADER + MAP_BODY}")
        body = data[HEADER:HEADER + MAP_BODY]
        nonce = body[:12]
        proto_num, internal, external = struct.unpack_from("!B3xHH", body, 12)
        third = _options(data[HEADER + MAP_BODY:]).get(OPT_THIRD_PARTY)
        return Reply(opcode, result, lifetime, epoch, nonce, NUM_PROTO.get(proto_num, str(proto_num)),
                     internal, external, _from_v6(body[20:36]),
                     _from_v6(third) if third is not None and len(third) == 16 else None)
    return Reply(opcode, result, lifetime, epoch)


def result_error(result: int, what: str = "") -> MappingError:
    return _result_error(RESULTS, result, mapper="pcp", what=what, unknown="unknown PCP result code")


def _parser(opcode: int, nonce: bytes | None) -> Callable[[bytes], Reply | None]:
    """Accepts the answer to one request: its opcode and nonce (an error answer cut short has no nonce)."""
    def parse(data: bytes) -> Reply | None:
        try:
            reply = decode_reply(data)
        except MalformedReply:
            return None
        if reply.opcode != opcode or (nonce is not None and reply.nonce and reply.nonce != nonce):
            return None
        return reply
    return parse


class PcpClient:
    """PCP MAP against one gateway, requests sent from ``client_ip`` (our LAN address)."""

    mapper = "pcp"
    can_list = False

    def __init__(self, gateway: str, client_ip: str, timeout: float = 2.0, epoch: int | None = None,
                 port: int = PORT) -> None:
        self.gateway = gateway
        self.port = port
        self.client_ip = client_ip
        self.timeout = timeout
        self._epoch: int | None = epoch  # from the discovery answer
        self._external: str | None = None

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def _ask(self, payload: bytes, opcode: int, nonce: bytes | None, what: str) -> Reply:
        reply = exchange(self.gateway, payload, _parser(opcode, nonce), timeout=self.timeout, port=self.port,
                         what=what)
        self._epoch = reply.epoch
        return reply

    def probe(self) -> Reply:
        return self._ask(encode_announce(self.client_ip), OP_ANNOUNCE, None, "PCP")

    def external_ip(self) -> str | None:
        """PCP has no "what is my address" request: a short-lived UDP MAP of a random high port reveals it
        (high, because routers commonly refuse mappings of ports below 1024)."""
        nonce = new_nonce()
        port = 49152 + int.from_bytes(nonce[:2], "big") % 16384
        reply = self._ask(encode_map(self.client_ip, nonce, "udp", port, port, 30), OP_MAP, nonce, "PCP MAP")
        if reply.result != 0:
            return None
        try:  # give it back straight away
            self._ask(encode_map(self.client_ip, nonce, "udp", port, 0, 0), OP_MAP, nonce, "PCP MAP")
        except MappingError:
            pass
        ip = reply.external_ip
        self._external = ip if ip not in ("", "0.0.0.0", "::") else None
        return self._external

    def list(self) -> list[Mapping] | None:
        return None

    def _third_party(self, m: Mapping) -> str | None:
        return m.internal_ip if m.internal_ip and m.internal_ip != self.client_ip else None

    def add(self, want: Mapping, lease: int, *, any_port: bool = False, nonce: str | None = None) -> Granted:
        return outcome(self.add_many([AddRequest(want, lease, any_port, nonce)])[0])

    def add_many(self, requests: Sequence[AddRequest]) -> list[Granted | NatlinkError]:
        """add() for each request, pipelined (udp.exchange_many; an answer is matched by its nonce). Each
        request's outcome: its grant or its error, never raised."""
        nonces = [bytes.fromhex(req.nonce) if req.nonce else new_nonce() for req in requests]
        batch: list[int] = []
        again: list[int] = []  # a nonce already in the batch: the answers could not be told apart
        for i, raw in enumerate(nonces):
            (again if any(nonces[j] == raw for j in batch) else batch).append(i)
        asks = [(self._map_payload(requests[i], nonces[i]), _parser(OP_MAP, nonces[i])) for i in batch]
        try:
            replies = exchange_many(self.gateway, asks, timeout=self.timeout, port=self.port, what="PCP MAP")
        except NatlinkError as exc:  # the gateway cannot be reached at all
            replies = [exc] * len(batch)
        out: dict[int, Granted | NatlinkError] = {}
        for i, reply in zip(batch, replies):
            out[i] = self._granted(requests[i], nonces[i], reply)
        for i in again:
            out[i] = self.add_many([requests[i]])[0]
        return [out[i] for i in range(len(requests))]

    def _map_payload(self, req: AddRequest, raw: bytes) -> bytes:
        lifetime = req.lease if req.lease > 0 else 7 * 86400  # lifetime 0 means delete in PCP
        want = req.want
        return encode_map(self.client_ip, raw, want.protocol, want.internal_port, want.external_port, lifetime,
                          third_party=self._third_party(want))

    def _granted(self, req: AddRequest, raw: bytes, reply: Reply | NatlinkError) -> Granted | NatlinkError:
        want, third = req.want, self._third_party(req.want)
        try:
            if isinstance(reply, NatlinkError):
                raise reply
            self._epoch = reply.epoch
            if reply.result != 0:
                if third is not None and reply.result in (2, 5, 12):
                    raise MappingError(reply.result, f"the router does not accept PCP mappings for another host "
                                                     f"({RESULTS[reply.result][0]} to THIRD_PARTY {third})",
                                       f"run natlink on {third}, or enable UPnP IGD on the router, or allow "
                                       "third-party PCP mappings (miniupnpd: pcp_allow_thirdparty=yes)",
                                       mapper="pcp")
                raise result_error(reply.result, f"{want.protocol.upper()} {want.external_port}")
            refusal = other_port_refusal(self.mapper, want, reply.external_port, any_port=req.any_port)
            if refusal is not None:  # give it back (see other_port_refusal)
                self._ask(encode_map(self.client_ip, raw, want.protocol, want.internal_port, 0, 0), OP_MAP, raw,
                          "PCP MAP")
                raise refusal
        except NatlinkError as exc:
            return exc
        # The answer names no internal host: without a THIRD_PARTY echo it is the requester (RFC 6887 11.1).
        return Granted(reply.external_port, reply.lifetime, reply.external_ip or None, raw.hex(),
                       internal_ip=reply.third_party or third or self.client_ip, internal_port=reply.internal_port)

    def delete(self, m: Mapping, *, nonce: str | None = None) -> None:
        if not nonce:
            raise MappingError(None, f"natlink has no PCP nonce for {m.protocol.upper()} {m.external_port} "
                                     "(state lost), so the gateway will not let it be deleted",
                               "it expires at the end of its lease; or reboot the router", mapper="pcp")
        raw = bytes.fromhex(nonce)
        reply = self._ask(encode_map(self.client_ip, raw, m.protocol, m.internal_port, 0, 0,
                                     third_party=self._third_party(m)), OP_MAP, raw, "PCP MAP")
        if reply.result != 0:
            raise result_error(reply.result, f"deleting {m.protocol.upper()} {m.external_port}")

    def close(self) -> None:
        pass
