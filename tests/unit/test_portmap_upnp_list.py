"""IGD v2 GetListOfPortMappings codec (natlink.portmap.upnp_list): request, answers as CDATA or escaped text,
faults and garbage (ListUnavailable, never another exception)."""

from __future__ import annotations

import socket
import threading

import pytest

from natlink.portmap.base import Mapping
from natlink.portmap.upnp_list import ListUnavailable, encode_request, fetch, parse_listing, split_url

ENTRY = ("<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPort>3390</p:NewExternalPort>"
         "<p:NewProtocol>TCP</p:NewProtocol><p:NewInternalPort>3389</p:NewInternalPort>"
         "<p:NewInternalClient>10.0.1.201</p:NewInternalClient><p:NewEnabled>1</p:NewEnabled>"
         "<p:NewDescription>natlink:rdp</p:NewDescription><p:NewLeaseTime>3597</p:NewLeaseTime>"
         "</p:PortMappingEntry>")
LIST = ('<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection">{}</p:PortMappingList>')


def answer(listing: str) -> str:
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            '<u:GetListOfPortMappingsResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">'
            f'<NewPortListing>{listing}</NewPortListing></u:GetListOfPortMappingsResponse></s:Body></s:Envelope>')


RDP = Mapping("tcp", 3390, "10.0.1.201", 3389, "natlink:rdp", 3597, True, "")


def test_cdata_listing_as_miniupnpd_sends_it():
    assert parse_listing(answer(f"<![CDATA[{LIST.format(ENTRY)}]]>")) == [RDP]


def test_escaped_listing_and_escaped_values():
    entry = ENTRY.replace("natlink:rdp", "natlink:rdp a &amp; b")
    escaped = LIST.format(entry).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    [m] = parse_listing(answer(escaped))
    assert m.description == "natlink:rdp a & b" and m.external_port == 3390


def test_several_entries_no_prefix_and_empty_elements():
    other = (ENTRY.replace("p:", "").replace("3390", "5000").replace("natlink:rdp", "upnpc")
             .replace("<NewRemoteHost></NewRemoteHost>", "<NewRemoteHost/>").replace("TCP", "UDP"))
    got = parse_listing(answer(f"<![CDATA[{LIST.format(ENTRY + other)}]]>"))
    assert [(m.protocol, m.external_port, m.description, m.remote_host) for m in got] == [
        ("tcp", 3390, "natlink:rdp", ""), ("udp", 5000, "upnpc", "")]


def test_empty_table():
    assert parse_listing(answer(f"<![CDATA[{LIST.format('')}]]>")) == []


@pytest.mark.parametrize("body,code", [
    ('<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>401</errorCode>'
     '<errorDescription>Invalid Action</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>', 401),
    ("", None),
    ("not xml at all", None),
])
def test_fault_or_garbage_is_list_unavailable(body, code):
    with pytest.raises(ListUnavailable) as info:
        parse_listing(body)
    assert info.value.code == code


@pytest.mark.parametrize("entry", [
    ENTRY.replace("<p:NewExternalPort>3390</p:NewExternalPort>", ""),
    ENTRY.replace("3390", "x"),
])
def test_unreadable_entry_is_list_unavailable(entry):
    with pytest.raises(ListUnavailable):
        parse_listing(answer(f"<![CDATA[{LIST.format(entry)}]]>"))


def test_request_names_the_protocol_and_whole_range():
    body = encode_request("udp").decode()
    assert "<NewProtocol>UDP</NewProtocol>" in body and "<NewEndPort>65535</NewEndPort>" in body
    assert "WANIPConnection:2" in body


@pytest.mark.parametrize("url,parts", [
    ("http://10.0.1.1:5000/ctl/IPConn", ("10.0.1.1", 5000, "/ctl/IPConn")),
    ("http://router/ctl", ("router", 80, "/ctl")),
    ("http://[fe80::1]:5000/x", ("fe80::1", 5000, "/x")),
    ("http://[fe80::1]/x", ("fe80::1", 80, "/x")),
])
def test_split_url(url, parts):
    assert split_url(url) == parts


def test_split_url_refuses_https():
    with pytest.raises(ListUnavailable):
        split_url("https://10.0.1.1/ctl")


class FakeBinding:
    """Stands in for miniupnpc.UPnP: a two-entry table walked with getgenericportmapping."""

    lanaddr = "10.0.1.201"

    def __init__(self):
        self.walks = 0

    def selectigd(self, url):
        return "http://10.0.1.1:5000/ctl/IPConn"

    def getgenericportmapping(self, i):
        self.walks += 1
        rows = [(3390, "TCP", ("10.0.1.201", 3389), "natlink:rdp", "1", "", 3597)]
        return rows[i] if i < len(rows) else None


def fake_client(monkeypatch, fetch):
    from natlink.portmap import upnp, upnp_list

    binding = FakeBinding()
    monkeypatch.setattr(upnp, "_binding", lambda: type("M", (), {"UPnP": lambda: binding}))
    monkeypatch.setattr(upnp_list, "fetch", fetch)
    return upnp.UpnpClient("http://10.0.1.1:5000/rootDesc.xml", "10.0.1.201"), binding


def test_client_lists_with_one_call_per_protocol(monkeypatch):
    calls = []
    client, binding = fake_client(monkeypatch, lambda url, proto, **kw: calls.append(proto) or (
        [RDP] if proto == "tcp" else []))
    assert client.list() == [RDP] and calls == ["tcp", "udp"] and binding.walks == 0
    assert client.lists_in_one_call


def test_client_falls_back_to_the_walk_and_remembers(monkeypatch):
    calls = []

    def fetch(url, proto, **kw):
        calls.append(proto)
        raise ListUnavailable("Invalid Action", 401)

    client, binding = fake_client(monkeypatch, fetch)
    assert client.list() == [RDP] and binding.walks == 2
    assert client.list() == [RDP] and calls == ["tcp"]  # not tried again
    assert not client.lists_in_one_call


@pytest.mark.parametrize("body", [
    # a DTD (billion laughs) inside the listing, as UTF-16 (a byte grep for "<!DOCTYPE" misses it)
    answer("<![CDATA[" + '<!DOCTYPE x [<!ENTITY a "aaaa">]><p:PortMappingList xmlns:p="u">&a;</p:PortMappingList>'
           + "]]>"),
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16"),
    answer("<![CDATA[<p:PortMappingList xmlns:p=\"u\"><p:PortMappingEntry><p:NewExternalPort>0"
           "</p:NewExternalPort></p:PortMappingEntry></p:PortMappingList>]]>"),  # port 0 is never a mapping
    b"\x00\xff garbage",
])
def test_hostile_or_malformed_answers_are_list_unavailable(body):
    with pytest.raises(ListUnavailable):
        parse_listing(body)


def serve_once(raw: bytes) -> str:
    """A control URL on loopback whose one answer is ``raw`` (status line, headers and body as sent)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            conn.recv(65536)
            conn.sendall(raw)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/ctl/IPConn"


def chunked(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + body


def test_bad_port_in_a_control_url_and_bad_chunks_are_list_unavailable():
    # the chunked decoding is the HTTP client's now (natlink.net.http): these answers come over a real socket
    with pytest.raises(ListUnavailable):
        split_url("http://10.0.1.1:99999/ctl")
    with pytest.raises(ListUnavailable):
        split_url("http://10.0.1.1:x/ctl")
    with pytest.raises(ListUnavailable):
        fetch(serve_once(chunked(b"zz\r\nabc\r\n0\r\n\r\n")), "tcp")
    with pytest.raises(ListUnavailable):
        fetch(serve_once(chunked(b"ffff\r\nabc\r\n")), "tcp")
    listing = answer(f"<![CDATA[{LIST.format(ENTRY)}]]>").encode()
    halves = (listing[:100], listing[100:])
    body = b"".join(b"%x\r\n%s\r\n" % (len(h), h) for h in halves) + b"0\r\n\r\n"
    assert fetch(serve_once(chunked(body)), "tcp") == [RDP]
