"""Discovery's pure parts: the protocol choice, SSDP LOCATION re-pointing, and how silence is worded."""

from __future__ import annotations

import pytest

from natlink.portmap.discover import ANSWERED, FAILED, SILENT, Discovery, Heard, choose, repoint

ALL = ("upnp", "natpmp", "pcp")

CHOICES = [
    # case, answered, preference, cached, other_host, expected
    ("configured order", ["upnp", "natpmp", "pcp"], ALL, None, False, ["upnp", "natpmp", "pcp"]),
    ("only what answered", ["pcp"], ALL, None, False, ["pcp"]),
    ("last time's protocol first", ALL, ALL, "natpmp", False, ["natpmp", "upnp", "pcp"]),
    ("cached but silent now", ["upnp"], ALL, "natpmp", False, ["upnp"]),
    ("another host: UPnP first", ALL, ("natpmp", "pcp", "upnp"), "natpmp", True, ["upnp", "pcp", "natpmp"]),
    ("another host, no UPnP: PCP before NAT-PMP", ["natpmp", "pcp"], ALL, "natpmp", True, ["pcp", "natpmp"]),
    ("not configured is never chosen", ["upnp", "natpmp"], ("natpmp",), None, False, ["natpmp"]),
]


@pytest.mark.parametrize("case,answered,preference,cached,other,expected", CHOICES, ids=[c[0] for c in CHOICES])
def test_choose(case, answered, preference, cached, other, expected):
    assert choose(answered, preference, cached=cached, other_host=other) == expected


REPOINT = [
    ("http://10.0.1.99:5000/rootDesc.xml", "http://10.0.1.1:5000/rootDesc.xml"),
    ("http://10.0.1.1:5000/rootDesc.xml", "http://10.0.1.1:5000/rootDesc.xml"),
    ("http://router.lan/desc.xml", "http://10.0.1.1/desc.xml"),
    ("http://[fe80::1]:49152/igd.xml", "http://10.0.1.1:49152/igd.xml"),
    ("https://10.0.1.99/x", "https://10.0.1.99/x"),  # not http: left as it is (and never opened as UPnP)
]


@pytest.mark.parametrize("location,expected", REPOINT)
def test_repoint_at_gateway(location, expected):
    assert repoint(location, "10.0.1.1") == expected


def test_not_waited_for_is_never_no_answer():
    d = Discovery({"upnp": Heard("upnp"), "natpmp": Heard("natpmp", ANSWERED, 0.002),
                   "pcp": Heard("pcp", FAILED, detail="10.0.1.1:5351 refused (nothing listens there)")}, waited=0.25)
    assert d.answered == ["natpmp"]
    assert d.describe("upnp") == "no answer within 250 ms (not waited for longer)"
    assert d.describe("natpmp") == "answered in 2 ms"
    assert "refused" in d.describe("pcp")
    assert Heard("upnp").state == SILENT


def _answer(st: str, location: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nST: {st}\r\nLOCATION: {location}\r\n\r\n".encode()


def test_ssdp_answers_only_from_the_gateway_and_igd2_preferred():
    from natlink.portmap.discover import _ssdp_answer, st_rank
    from natlink.portmap.ssdp import SEARCH_TARGETS

    igd2, igd1 = SEARCH_TARGETS[0], SEARCH_TARGETS[1]
    assert st_rank(igd2) < st_rank(igd1) < st_rank("urn:other")
    h, d = Heard("upnp"), Discovery({})
    _ssdp_answer(_answer(igd2, "http://10.0.1.99:5000/x.xml"), "10.0.1.99", h, d, "10.0.1.1", 0.001)
    assert not h.ok and d.ignored == ["10.0.1.99 (http://10.0.1.99:5000/x.xml)"]  # never believed
    _ssdp_answer(_answer(igd1, "http://10.0.1.1:5000/v1.xml"), "10.0.1.1", h, d, "10.0.1.1", 0.05)
    assert h.ok and h.location.endswith("/v1.xml") and h.elapsed == 0.05
    _ssdp_answer(_answer(igd2, "http://192.168.9.9:5001/v2.xml"), "10.0.1.1", h, d, "10.0.1.1", 0.06)
    assert h.location == "http://10.0.1.1:5001/v2.xml" and h.elapsed == 0.05  # re-pointed at the gateway
    _ssdp_answer(_answer(igd1, "http://10.0.1.1:5000/v1.xml"), "10.0.1.1", h, d, "10.0.1.1", 0.07)
    assert h.location.endswith("/v2.xml")  # IGD:2 stays
