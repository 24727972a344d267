"""The reflector's pure limits, PROXY v2 parsing, request heads and metrics text, as tables."""

from __future__ import annotations

import struct

import pytest

from natlink.probe import proxy_protocol as pp
from natlink.probe.reflector_limits import Limits
from natlink.probe.reflector_metrics import ReflectorMetrics
from natlink.probe.reflector_request import HttpHead, RequestError, hold_lifetime, parse_head


def test_connections_per_address_and_total():
    lim = Limits(per_address=2, total=3)
    assert lim.connect("a") is None and lim.connect("a") is None
    refused = lim.connect("a")
    assert refused is not None and (refused.status, refused.reason) == (429, "connections-per-address")
    assert lim.connect("b") is None
    full = lim.connect("c")
    assert full is not None and (full.status, full.reason) == (503, "connections-total")
    lim.disconnect("a")
    assert lim.connect("c") is None and lim.open_by_address == {"a": 1, "b": 1, "c": 1}
    for who in ("a", "b", "c"):
        lim.disconnect(who)
    assert lim.open_total == 0 and lim.open_by_address == {}


def test_probes_and_holds_draw_from_one_budget_per_address():
    lim = Limits(rate=3, token_rate=0)
    assert [lim.spend("a", None, now=10.0) for _ in range(3)] == [None, None, None]  # e.g. 2 probes + 1 hold
    over = lim.spend("a", None, now=10.0)
    assert over is not None and over.status == 429 and over.reason == "budget-address"
    assert 19.0 < over.retry_after <= 20.0
    assert lim.spend("b", None, now=10.0) is None  # another address has its own budget
    assert lim.spend("a", None, now=30.5) is None  # refilled: one unit per 20 s


def test_token_budget_spans_addresses_and_takes_nothing_when_refused():
    lim = Limits(rate=100, token_rate=2)
    assert lim.spend("a", "#1", now=0.0) is None and lim.spend("b", "#1", now=0.0) is None
    reused = lim.spend("c", "#1", now=0.0)  # the same token from a third address
    assert reused is not None and reused.reason == "budget-token"
    assert lim.spend("c", "#2", now=0.0) is None  # another token is not affected
    assert lim.by_address.peek("c", now=0.0) == 0.0  # the refused request cost address c nothing


def test_holds_per_address_and_total():
    lim = Limits(holds_per_address=2, holds_total=3)
    assert lim.hold("a") is None and lim.hold("a") is None
    assert lim.hold("a").reason == "holds-per-address"  # type: ignore[union-attr]
    assert lim.hold("b") is None
    assert lim.hold("c").status == 503  # type: ignore[union-attr]
    lim.unhold("a")
    assert lim.hold("c") is None and lim.holds_open == 3


def test_proxy_v2_roundtrip_ipv4_and_ipv6():
    header = pp.build("11.0.0.2", 40000, "11.0.0.1", 8765)
    assert pp.parse(header[:16], header[16:]) == pp.ProxyHeader("PROXY", "11.0.0.2", 40000)
    six = pp.build("2001:db8::7", 1234, "2001:db8::1", 8765)
    assert pp.parse(six[:16], six[16:]).source == "2001:db8::7"
    mapped = pp.build("::ffff:11.0.0.9", 1, "::1", 2)
    assert pp.parse(mapped[:16], mapped[16:]).source == "11.0.0.9"


@pytest.mark.parametrize("prefix,words", [
    (b"GET / HTTP/1.1\r\nHo", "no PROXY v2 signature"),
    (b"PROXY TCP4 1.2.3.4", "no PROXY v2 signature"),  # v1 is text and is not accepted
    (pp.SIGNATURE + bytes([0x11, 0x11]) + struct.pack("!H", 12), "version 1"),
    (pp.SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", 4000), "too long"),
])
def test_proxy_v2_rejects(prefix, words):
    with pytest.raises(pp.ProxyHeaderError, match=words):
        pp.body_length(prefix[:16])


def test_proxy_v2_local_and_unix():
    local = pp.SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    assert pp.parse(local, b"") == pp.ProxyHeader("LOCAL", None)
    unix = pp.SIGNATURE + bytes([0x21, 0x31]) + struct.pack("!H", 216)
    with pytest.raises(pp.ProxyHeaderError, match="cannot be dialled back"):
        pp.parse(unix, b"\0" * 216)
    with pytest.raises(pp.ProxyHeaderError, match="truncated"):
        pp.parse(pp.build("1.2.3.4", 1, "5.6.7.8", 2)[:16], b"\0" * 4)


@pytest.mark.parametrize("peer,nets,want", [
    ("10.0.0.5", ("10.0.0.0/24",), True), ("10.0.1.5", ("10.0.0.0/24",), False),
    ("::1", ("127.0.0.1/32",), False), ("::1", ("::1/128",), True), ("127.0.0.1", (), False),
])
def test_trusted_proxy(peer, nets, want):
    import ipaddress

    assert pp.trusted(peer, tuple(ipaddress.ip_network(n) for n in nets)) is want


def test_parse_head():
    head = parse_head(b"POST /v1/probe?x=1 HTTP/1.1\r\nHost: r\r\nContent-Length: 12\r\nAuthorization: Bearer t")
    assert head == HttpHead("POST", "/v1/probe", {"x": ["1"]}, {"host": "r", "content-length": "12",
                                                                "authorization": "Bearer t"})
    assert head.body_length(100) == 12


@pytest.mark.parametrize("raw,status", [
    (b"\r\n\r\n\x00\r\nQUIT\n!\x11\x00\x0c", 400),  # a PROXY header from an untrusted peer is just bad HTTP
    (b"GET /v1/health", 400), (b"GET nope HTTP/1.1", 400), (b"GET / HTTP/1.1\r\nbad header", 400),
])
def test_parse_head_rejects(raw, status):
    with pytest.raises(RequestError) as info:
        parse_head(raw)
    assert info.value.status == status


@pytest.mark.parametrize("headers,status", [
    ({}, 411), ({"content-length": "x"}, 400), ({"content-length": "-1"}, 400), ({"content-length": "101"}, 413),
    ({"transfer-encoding": "chunked", "content-length": "1"}, 411),
])
def test_body_length_rejects(headers, status):
    with pytest.raises(RequestError) as info:
        HttpHead("POST", "/v1/probe", {}, headers).body_length(100)
    assert info.value.status == status


def test_hold_lifetime():
    assert hold_lifetime({}, 3600) == 3600
    assert hold_lifetime({"max": ["0.1"]}, 3600) == 1.0
    assert hold_lifetime({"max": ["99999"]}, 3600) == 3600
    with pytest.raises(RequestError):
        hold_lifetime({"max": ["soon"]}, 3600)


def test_metrics_text():
    m = ReflectorMetrics()
    m.requests["/v1/probe"] += 2
    m.dialbacks["open"] += 1
    m.refusals["budget-address"] += 3
    m.open_connections = 5
    text = m.render()
    assert 'natlink_reflector_requests_total{endpoint="/v1/probe"} 2' in text
    assert 'natlink_reflector_dialbacks_total{outcome="open"} 1' in text
    assert 'natlink_reflector_refusals_total{reason="budget-address"} 3' in text
    assert "natlink_reflector_open_connections 5" in text and "# TYPE natlink_reflector_held_connections gauge" in text
