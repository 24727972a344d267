"""Mappings for another host and the check of what the router granted (pure)."""

from __future__ import annotations

import struct

import pytest

from natlink.portmap.base import Granted, Mapping
from natlink.portmap.granted import granted_mismatch, other_host_refusal
from natlink.portmap.pcp import decode_reply, encode_map

ME, OTHER = "10.0.1.201", "10.0.1.99"


def want(ip=ME, port=3389):
    return Mapping("tcp", 3390, ip, port)


REFUSALS = [
    # protocol, internal ip, refused
    ("natpmp", OTHER, True),
    ("natpmp", ME, False),
    ("pcp", OTHER, False),   # PCP tries THIRD_PARTY; the router decides
    ("upnp", OTHER, False),  # UPnP names the internal client; secure mode may refuse (718/606)
]


@pytest.mark.parametrize("protocol,ip,refused", REFUSALS)
def test_other_host_never_over_natpmp(protocol, ip, refused):
    err = other_host_refusal(protocol, want(ip), ME)
    assert (err is not None) is refused
    if err is not None:
        assert f"run natlink on {OTHER}" in err.hint and "NAT-PMP maps only to the host that asks" in err.message
        assert "TCP 3390" in err.message


MISMATCHES = [
    # granted internal ip, port, expected fragments (None: no mismatch)
    (ME, 3389, None),
    (None, None, None),  # the protocol does not say
    (ME, 3390, ["port 3390"]),
    (OTHER, 3389, [f"host {OTHER}"]),
    (OTHER, 1, [f"host {OTHER}", "port 1"]),
]


@pytest.mark.parametrize("ip,port,fragments", MISMATCHES)
def test_granted_internal_side_is_compared(ip, port, fragments):
    err = granted_mismatch("pcp", want(), Granted(3390, 3600, internal_ip=ip, internal_port=port))
    if fragments is None:
        assert err is None
    else:
        assert err is not None and all(f in err.message for f in fragments) and f"{ME}:3389" in err.message


def test_pcp_third_party_option_round_trip():
    raw = encode_map(ME, bytes(12), "tcp", 3389, 3390, 3600, third_party=OTHER)
    assert len(raw) == 80 and raw[60:64] == struct.pack("!BBH", 1, 0, 16)
    answer = bytearray(raw)
    answer[1] |= 0x80  # R bit: the server echoes the MAP body and the option
    reply = decode_reply(bytes(answer))
    assert reply.third_party == OTHER and reply.internal_port == 3389


def test_pcp_truncated_option_is_ignored():
    raw = encode_map(ME, bytes(12), "tcp", 3389, 3390, 3600, third_party=OTHER)
    answer = bytearray(raw[:64] + bytes(4))  # the option says 16 bytes, 4 follow
    answer[1] |= 0x80
    assert decode_reply(bytes(answer)).third_party is None
