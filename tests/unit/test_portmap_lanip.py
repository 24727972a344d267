"""Pure parts of the LAN side and SSDP: route table, `ip -j addr`, SSDP answers."""

from __future__ import annotations

import json

import pytest

from natlink.portmap.lanip import parse_ip_addr_json, parse_route_table
from natlink.portmap.ssdp import encode_search, parse_answer

ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
"""


def test_default_gateway_from_route_table():
    assert parse_route_table(ROUTES) == "10.0.1.1"


def test_no_default_route():
    assert parse_route_table(ROUTES.splitlines()[0] + "\n" + ROUTES.splitlines()[1]) is None
    assert parse_route_table("") is None


def _addr(local, **info):
    return json.dumps([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": local, **info}]}])


@pytest.mark.parametrize("text,expected", [
    (_addr("10.0.1.201", dynamic=True, valid_life_time=3000), True),
    (_addr("10.0.1.201", valid_life_time=86000), True),
    (_addr("10.0.1.201", valid_life_time=4294967295), False),
    (_addr("10.0.1.5", valid_life_time=4294967295), None),
    ("not json", None),
])
def test_looks_dhcp(text, expected):
    assert parse_ip_addr_json(text, "10.0.1.201") is expected


def test_ssdp_answer_parsed():
    raw = (b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2"
           b"\r\nUSN: uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nEXT:\r\n"
           b"SERVER: Debian UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://10.0.1.1:5000/rootDesc.xml\r\n\r\n")
    a = parse_answer(raw, "10.0.1.1")
    assert a is not None and a.location == "http://10.0.1.1:5000/rootDesc.xml" and "MiniUPnPd" in a.server


@pytest.mark.parametrize("raw", [
    b"", b"garbage\xff\xfe", b"NOTIFY * HTTP/1.1\r\nLOCATION: http://x/\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:MediaRenderer:1\r\nLOCATION: http://10.0.1.5/d.xml\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: file:///etc\r\n\r\n",
])
def test_ssdp_non_igd_ignored(raw):
    assert parse_answer(raw, "10.0.1.5") is None


def test_search_message():
    msg = encode_search("urn:schemas-upnp-org:device:InternetGatewayDevice:1").decode()
    assert msg.startswith("M-SEARCH * HTTP/1.1\r\n") and 'MAN: "ssdp:discover"' in msg and msg.endswith("\r\n\r\n")
