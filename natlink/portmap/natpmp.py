"""NAT-PMP (RFC 6886): packet codec (pure) and a small client over UDP 5351.

Requests: public address (opcode 0) and map UDP/TCP (opcodes 1/2). Every answer carries the epoch
(seconds since the gateway's mapping table started); an epoch that goes backwards means the
gateway lost its mappings (reboot, WAN address change).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from natlink.errors import NatlinkError
from natlink.portmap.base import AddRequest, Granted, Mapping, MappingError, outcome
from natlink.portmap.granted import other_host_refusal, other_port_refusal
from natlink.portmap.results import NO_EXTERNAL_FIX, NO_RESOURCES_FIX, ResultTable
from natlink.portmap.results import result_error as _result_error
from natlink.portmap.udp import PORT, exchange, exchange_many

VERSION = 0
OP_PUBLIC = 0
OP_MAP = {"udp": 1, "tcp": 2}

RESULTS: ResultTable = {
    0: ("Success", "", ""),
    1: ("Unsupported Version", "the gateway does not speak NAT-PMP version 0", "use UPnP or PCP (router.protocols)"),
    2: ("Not Authorized/Refused", "the gateway refused the mapping (NAT-PMP switched off, or its policy forbids "
        "this port)", "allow the port in the router's NAT-PMP settings, or use a high external_port"),
    3: ("Network Failure", "the gateway has no external address (not connected, or behind another NAT / CGNAT)",
        NO_EXTERNAL_FIX),
    4: ("Out of resources", "the gateway's mapping table is full", NO_RESOURCES_FIX),
    5: ("Unsupported opcode", "the gateway does not support this request", "use UPnP or PCP (router.protocols)"),
}


class MalformedReply(ValueError):
    """A datagram that is not a valid NAT-PMP answer."""


@dataclass(frozen=True)
class PublicAddressReply:
    """A NAT-PMP public-address answer (RFC 6886 section 3.2)."""

    result: int
    epoch: int
    address: str


@dataclass(frozen=True)
class MapReply:
    """A NAT-PMP mapping answer (RFC 6886 section 3.3)."""

    protocol: str
    result: int
    epoch: int
    internal_port: int
    external_port: int
    lifetime: int


def encode_public_request() -> bytes:
    return struct.pack("!BB", VERSION, OP_PUBLIC)


def encode_map_request(protocol: str, internal_port: int, external_port: int, lifetime: int) -> bytes:
    """A map request; lifetime 0 (with external_port 0) deletes the mapping (RFC 6886 3.4)."""
    if protocol not in OP_MAP:
        raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
    for value, top in ((internal_port, 0xFFFF), (external_port, 0xFFFF), (lifetime, 0xFFFFFFFF)):
        if not 0 <= value <= top:
            raise ValueError(f"value out of range: {value}")
    return struct.pack("!BBHHHI", VERSION, OP_MAP[protocol], 0, internal_port, external_port, lifetime)


def decode_reply(data: bytes) -> PublicAddressReply | MapReply:
    """Parse an answer; raise MalformedReply (never anything else) for anything that is not one."""
    if len(data) < 4:
        raise MalformedReply(f"{len(data)}-byte datagram is too short for a NAT-PMP answer")
    version, op, result = struct.unpack_from("!BBH", data)
    if version != VERSION:
        raise MalformedReply(f"version {version}, expected {VERSION}")
    if op < 128:
        raise MalformedReply(f"opcode {op} is a request, not an answer")
    op -= 128
    if op == OP_PUBLIC:
        if len(data) < 8:
            raise MalformedReply(f"{len(data)}-byte public address answer, expected 12")
        epoch = struct.unpack_from("!I", data, 4)[0]
        address = str(ipaddress.IPv4Address(data[8:12])) if len(data) >= 12 and result == 0 else ""
        if result == 0 and len(data) < 12:
            raise MalformedReply(f"{len(data)}-byte public address answer, expected 12")
        return PublicAddressReply(result, epoch, address)
    proto = {1: "udp", 2: "tcp"}.get(op)
    if proto is None:
        raise MalformedReply(f"unknown answer opcode {op + 128}")
    if len(data) < 8:
        raise MalformedReply(f"{len(data)}-byte map answer, expected 16")
    epoch = struct.unpack_from("!I", data, 4)[0]
    if len(data) < 16:
        if result != 0:  # some gateways send only the header with an error
            return MapReply(proto, result, epoch, 0, 0, 0)
        raise MalformedReply(f"{len(data)}-byte map answer, expected 16")
    internal, external, lifetime = struct.unpack_from("!HHI", data, 8)
    return MapReply(proto, result, epoch, internal, external, lifetime)


def result_error(result: int, *, what: str = "") -> MappingError:
    return _result_error(RESULTS, result, mapper="natpmp", what=what)


def _parser(kind: type, protocol: str | None = None, internal_port: int | None = None):
    def parse(data: bytes):
        try:
            reply = decode_reply(data)
        except MalformedReply:
            return None  # keep waiting for a proper answer (counted as no answer at the deadline)
        if not isinstance(reply, kind):
            return None
        if isinstance(reply, MapReply) and (reply.protocol != protocol or reply.internal_port not in (
                internal_port, 0)):  # 0: an error answer cut short after the header
            return None
        return reply
    return parse


def _map_ask(protocol: str, internal: int, external: int, lifetime: int) -> tuple[bytes, Callable[[bytes], Any]]:
    """A map request and the parser that knows its answer."""
    return encode_map_request(protocol, internal, external, lifetime), _parser(MapReply, protocol, internal)


def _lifetime(lease: int) -> int:
    """A lease of 0 would mean "delete" in NAT-PMP: ask for the longest the RFC suggests instead."""
    return lease if lease > 0 else 7 * 86400


def _key(req: AddRequest) -> tuple[str, int]:
    return req.want.protocol, req.want.internal_port


class NatPmpClient:
    """NAT-PMP against one gateway. Cannot list the table; each answer updates ``epoch``."""

    mapper = "natpmp"
    can_list = False

    def __init__(self, gateway: str, timeout: float = 2.0, self_ip: str | None = None,
                 epoch: int | None = None, port: int = PORT) -> None:
        self.gateway = gateway
        self.port = port
        self.self_ip = self_ip
        self.timeout = timeout
        self._epoch: int | None = epoch  # from the discovery answer
        self._address: PublicAddressReply | None = None

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def probe(self) -> PublicAddressReply:
        reply = exchange(self.gateway, encode_public_request(), _parser(PublicAddressReply),
                         timeout=self.timeout, port=self.port, what="NAT-PMP")
        self._epoch = reply.epoch
        self._address = reply
        return reply

    def external_ip(self) -> str | None:
        reply = self.probe()
        return reply.address if reply.result == 0 and reply.address not in ("", "0.0.0.0") else None

    def list(self) -> list[Mapping] | None:
        return None

    def add(self, want: Mapping, lease: int, *, any_port: bool = False, nonce: str | None = None) -> Granted:
        return outcome(self.add_many([AddRequest(want, lease, any_port, nonce)])[0])

    def add_many(self, requests: Sequence[AddRequest]) -> list[Granted | NatlinkError]:
        """add() for each request, pipelined (udp.exchange_many; an answer is matched by protocol and internal
        port). Each request's outcome: its grant or its error, never raised."""
        out: list[Granted | NatlinkError | None] = [None] * len(requests)
        batch: list[int] = []
        again: list[int] = []  # same protocol and internal port as one in the batch: answers would look alike
        for i, req in enumerate(requests):
            refusal = other_host_refusal(self.mapper, req.want, self.self_ip)
            if refusal is not None:
                out[i] = refusal
            elif any(_key(requests[j]) == _key(req) for j in batch):
                again.append(i)
            else:
                batch.append(i)
        asks = [_map_ask(w.protocol, w.internal_port, w.external_port, _lifetime(requests[i].lease))
                for i in batch for w in (requests[i].want,)]
        try:
            replies = exchange_many(self.gateway, asks, timeout=self.timeout, port=self.port, what="NAT-PMP map")
        except NatlinkError as exc:  # the gateway cannot be reached at all
            replies = [exc] * len(batch)
        for i, reply in zip(batch, replies):
            out[i] = self._granted(requests[i], reply)
        for i in again:
            out[i] = self.add_many([requests[i]])[0]
        return out  # type: ignore[return-value]

    def _granted(self, req: AddRequest, reply: MapReply | NatlinkError) -> Granted | NatlinkError:
        want = req.want
        try:
            if isinstance(reply, NatlinkError):
                raise reply
            self._epoch = reply.epoch
            if reply.result != 0:
                raise result_error(reply.result, what=f"{want.protocol.upper()} {want.external_port}")
            refusal = other_port_refusal(self.mapper, want, reply.external_port, any_port=req.any_port)
            if refusal is not None:
                self._map(want.protocol, want.internal_port, 0, 0)  # give it back (see other_port_refusal)
                raise refusal
        except NatlinkError as exc:
            return exc
        # NAT-PMP has no internal-address field: the mapping always goes to the sender (RFC 6886 3.3).
        return Granted(reply.external_port, reply.lifetime, self._address.address if self._address else None,
                       internal_ip=self.self_ip, internal_port=reply.internal_port)

    def delete(self, m: Mapping, *, nonce: str | None = None) -> None:
        reply = self._map(m.protocol, m.internal_port, 0, 0)
        if reply.result != 0:
            raise result_error(reply.result, what=f"deleting {m.protocol.upper()} {m.external_port}")

    def _map(self, protocol: str, internal: int, external: int, lifetime: int) -> MapReply:
        reply = exchange(self.gateway, *_map_ask(protocol, internal, external, lifetime), timeout=self.timeout,
                         port=self.port, what="NAT-PMP map")
        self._epoch = reply.epoch
        return reply

    def close(self) -> None:
        pass
