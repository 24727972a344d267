"""NAT-PMP (RFC 6886) packet encode/decode, including malformed and truncated answers."""

from __future__ import annotations

import struct

import pytest

from natlink.portmap.natpmp import (MalformedReply, MapReply, PublicAddressReply, decode_reply, encode_map_request,
                                    encode_public_request, result_error)


def test_public_request_is_two_bytes():
    assert encode_public_request() == b"\x00\x00"


@pytest.mark.parametrize("proto,op", [("udp", 1), ("tcp", 2)])
def test_map_request_layout(proto, op):
    raw = encode_map_request(proto, 3389, 3390, 3600)
    assert len(raw) == 12
    assert struct.unpack("!BBHHHI", raw) == (0, op, 0, 3389, 3390, 3600)


@pytest.mark.parametrize("args", [("sctp", 1, 1, 1), ("tcp", 70000, 1, 1), ("tcp", 1, -1, 1), ("tcp", 1, 1, 2**32)])
def test_map_request_rejects_bad_values(args):
    with pytest.raises(ValueError):
        encode_map_request(*args)


def test_decode_public_address():
    r = decode_reply(bytes([0, 128, 0, 0]) + struct.pack("!I", 77) + bytes([11, 0, 0, 2]))
    assert r == PublicAddressReply(0, 77, "11.0.0.2")


def test_decode_public_address_error_without_address():
    r = decode_reply(bytes([0, 128, 0, 3]) + struct.pack("!I", 5))
    assert isinstance(r, PublicAddressReply) and r.result == 3 and r.address == ""


def test_decode_map():
    raw = bytes([0, 130, 0, 0]) + struct.pack("!IHHI", 9, 3389, 3390, 3600)
    assert decode_reply(raw) == MapReply("tcp", 0, 9, 3389, 3390, 3600)


def test_decode_map_error_header_only():
    r = decode_reply(bytes([0, 129, 0, 2]) + struct.pack("!I", 9))
    assert isinstance(r, MapReply) and r.protocol == "udp" and r.result == 2


BAD = [
    b"", b"\x00", b"\x00\x80\x00",                       # truncated headers
    bytes([1, 128, 0, 0]) + b"\0" * 8,                   # wrong version
    bytes([2, 128, 0, 0]) + b"\0" * 8,                   # PCP, not NAT-PMP
    bytes([0, 0, 0, 0]) + b"\0" * 8,                     # a request echoed back
    bytes([0, 128, 0, 0]) + b"\0" * 6,                   # public address cut short (success)
    bytes([0, 130, 0, 0]) + b"\0" * 8,                   # map answer cut short (success)
    bytes([0, 200, 0, 0]) + b"\0" * 12,                  # unknown opcode
]


@pytest.mark.parametrize("raw", BAD)
def test_malformed_answers_raise_malformed_reply_only(raw):
    with pytest.raises(MalformedReply):
        decode_reply(raw)


def fuzz_inputs():
    """Version 0 and (mostly) an answer opcode, then random bytes cut at the lengths the decoder checks: so
    the inputs reach its length, opcode and field checks instead of stopping at the version byte."""
    import random
    rng = random.Random(7)
    for _ in range(3000):
        n = rng.choice([0, 2, 4, 7, 8, 11, 12, 15, 16, rng.randrange(20)])
        op = rng.choice([128, 129, 130, 128, 129, 130, 0, 2, rng.randrange(256)])
        yield (bytes([0, op]) + bytes(rng.randrange(256) for _ in range(max(0, n - 2))))[:n]


def test_fuzz_never_crashes():
    decoded = set()
    for raw in fuzz_inputs():
        try:
            decoded.add(type(decode_reply(raw)))
        except MalformedReply:
            pass
    assert decoded == {PublicAddressReply, MapReply}  # the inputs got through to both answer decoders


@pytest.mark.parametrize("code,words", [(1, "version"), (2, "refused"), (3, "no external address"),
                                        (4, "full"), (5, "does not support"), (99, "unknown result code 99")])
def test_result_codes_explained(code, words):
    err = result_error(code)
    assert err.code == code and words in err.cause and err.fix
