"""PCP (RFC 6887) packet encode/decode, including malformed and truncated answers."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from natlink.portmap.pcp import (MalformedReply, decode_reply, encode_announce, encode_map, result_error, RESULTS)

NONCE = bytes(range(12))


def _mapped(ip: str) -> bytes:
    return ipaddress.IPv6Address("::ffff:" + ip).packed


def test_announce_is_a_24_byte_header():
    raw = encode_announce("10.0.1.201")
    assert len(raw) == 24 and raw[0] == 2 and raw[1] == 0
    assert raw[8:] == _mapped("10.0.1.201")


def test_map_request_layout():
    raw = encode_map("10.0.1.201", NONCE, "tcp", 3389, 3390, 3600)
    assert len(raw) == 60
    assert raw[:2] == b"\x02\x01" and struct.unpack_from("!I", raw, 4)[0] == 3600
    assert raw[24:36] == NONCE and raw[36] == 6
    assert struct.unpack_from("!HH", raw, 40) == (3389, 3390)
    assert raw[44:60] == _mapped("0.0.0.0")


@pytest.mark.parametrize("kw", [dict(nonce=b"short"), dict(protocol="sctp"), dict(internal_port=70000),
                                dict(lifetime=-1)])
def test_map_request_rejects_bad_values(kw):
    args = dict(client_ip="10.0.1.201", nonce=NONCE, protocol="tcp", internal_port=1, external_port=1, lifetime=1)
    args.update(kw)
    with pytest.raises(ValueError):
        encode_map(**args)


def _answer(op=1, result=0, lifetime=3600, epoch=42, body=True, proto=6, ext=3390, ip="11.0.0.2"):
    head = struct.pack("!BBBBII", 2, 0x80 | op, 0, result, lifetime, epoch) + b"\0" * 12
    if not body:
        return head
    return head + NONCE + struct.pack("!B3xHH", proto, 3389, ext) + _mapped(ip)


def test_decode_map_answer():
    r = decode_reply(_answer())
    assert (r.opcode, r.result, r.lifetime, r.epoch, r.nonce, r.protocol, r.internal_port, r.external_port,
            r.external_ip) == (1, 0, 3600, 42, NONCE, "tcp", 3389, 3390, "11.0.0.2")


def test_decode_announce_answer():
    r = decode_reply(_answer(op=0, lifetime=0, body=False))
    assert r.opcode == 0 and r.epoch == 42


def test_decode_error_answer_without_body():
    r = decode_reply(_answer(result=2, body=False))
    assert r.result == 2 and r.nonce == b""


BAD = [
    b"", b"\x02\x81", _answer()[:20],                  # truncated
    _answer()[:40],                                    # map body cut short on success
    _answer() + b"\0",                                 # not a multiple of 4
    b"\x00" + _answer()[1:],                           # NAT-PMP version
    bytes([2, 0x01]) + _answer()[2:],                  # a request (R bit clear)
    _answer() + b"\0" * 1100,                          # too long
]


@pytest.mark.parametrize("raw", BAD)
def test_malformed_answers_raise_malformed_reply_only(raw):
    with pytest.raises(MalformedReply):
        decode_reply(raw)


def test_fuzz_never_crashes():
    import random
    rng = random.Random(11)
    for _ in range(3000):
        n = rng.choice([0, 4, 8, 24, 28, 60, 64, rng.randrange(80)])
        raw = bytes([2, rng.choice([0x80, 0x81, 0x01])]) + bytes(rng.randrange(256) for _ in range(max(0, n - 2)))
        try:
            decode_reply(raw[:n])
        except MalformedReply:
            pass


@pytest.mark.parametrize("code", sorted(c for c in RESULTS if c))
def test_result_codes_explained(code):
    err = result_error(code)
    assert err.code == code and err.cause and err.fix and RESULTS[code][0] in err.cause
