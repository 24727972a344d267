"""Every WAN connection service of real-shaped root descriptions, and the pure choice among them
(natlink.portmap.igd_services)."""

from __future__ import annotations

import pytest

from igd_descriptions import FRITZ, MINIUPNPD_V2, TWO_DEVICES, igd
from natlink.portmap import igd_services as svc
from natlink.portmap.igd_services import Observed, WanService
from natlink.portmap.xmlsafe import RouterXmlError

IP1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
IP2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
PPP1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"


def shape(services: list[WanService]) -> list[tuple[str, str]]:
    return [(s.label, s.control_url) for s in services]


@pytest.mark.parametrize("description, url, gateway, expected", [
    # miniupnpd 2.3.1, IGD v2: one WANIPConnection:2 (the IPv6 firewall and L3F services are not WAN connections)
    (MINIUPNPD_V2, "http://10.0.1.1:5000/rootDesc.xml", "10.0.1.1",
     [("WANIPConnection:2", "http://10.0.1.1:5000/ctl/IPConn")]),
    # FRITZ!Box-like: IP then PPP in one WANConnectionDevice, three levels down; WANDSLLinkConfig is not one
    (FRITZ, "http://192.168.178.1:49000/igddesc.xml", "192.168.178.1",
     [("WANIPConnection:1", "http://192.168.178.1:49000/igdupnp/control/WANIPConn1"),
      ("WANPPPConnection:1", "http://192.168.178.1:49000/igdupnp/control/WANPPPConn1")]),
    # two WANConnectionDevices; URLBase and an absolute control URL name 192.168.1.1, the gateway is 192.168.0.1
    (TWO_DEVICES, "http://192.168.0.1:5431/dyndev/uuid:0000", "192.168.0.1",
     [("WANPPPConnection:1",
       "http://192.168.0.1:5431/uuid:00000000-0000-0000-0003-001a2b3c4d5e/WANPPPConnection:1"),
      ("WANIPConnection:1",
       "http://192.168.0.1:5431/uuid:00000000-0000-0000-0004-001a2b3c4d5e/WANIPConnection:1")]),
    # without a gateway to re-point at, URLBase is taken as it is
    (TWO_DEVICES, "http://192.168.0.1:5431/dyndev/uuid:0000", None,
     [("WANPPPConnection:1",
       "http://192.168.1.1:5431/uuid:00000000-0000-0000-0003-001a2b3c4d5e/WANPPPConnection:1"),
      ("WANIPConnection:1",
       "http://192.168.1.1:5431/uuid:00000000-0000-0000-0004-001a2b3c4d5e/WANIPConnection:1")]),
    # relative control URLs without a leading slash resolve against the description's directory
    (igd("urn:schemas-upnp-org:device:InternetGatewayDevice:1", [(IP1, "ctl/ip")]),
     "http://10.0.0.1:80/desc/root.xml", "10.0.0.1", [("WANIPConnection:1", "http://10.0.0.1:80/desc/ctl/ip")]),
    # unusable control URLs are left out: empty, a bad port, not http
    (igd("urn:schemas-upnp-org:device:InternetGatewayDevice:1",
         [(IP1, ""), (IP2, "http://10.0.0.1:99999/x"), (PPP1, "https://10.0.0.1/p"), (IP1, "/ok")]),
     "http://10.0.0.1:5000/root.xml", "10.0.0.1", [("WANIPConnection:1", "http://10.0.0.1:5000/ok")]),
    # other vendors' and TR-064 service types are not IGD WAN connections
    (igd("urn:schemas-upnp-org:device:InternetGatewayDevice:1",
         [("urn:dslforum-org:service:WANIPConnection:1", "/tr64"), ("urn:schemas-upnp-org:service:WANIPConnection:x",
                                                                   "/bad"), (IP2, "/good")]),
     "http://10.0.0.1:5000/root.xml", "10.0.0.1", [("WANIPConnection:2", "http://10.0.0.1:5000/good")]),
])
def test_parse_description(description, url, gateway, expected):
    assert shape(svc.parse_description(description, url, gateway)) == expected


def test_services_carry_their_event_url_device_and_description():
    s = svc.parse_description(FRITZ, "http://192.168.178.1:49000/igddesc.xml", "192.168.178.1")[1]
    assert s.service_type == PPP1 and s.description_url == "http://192.168.178.1:49000/igddesc.xml"
    assert s.event_url == "http://192.168.178.1:49000/igdupnp/control/WANPPPConn1"
    assert s.device == "uuid:76802409-bccb-40e7-8e6a-989BCB2B93B0"


def test_several_igds_answering_ssdp_give_every_service_once():
    v1 = igd("urn:schemas-upnp-org:device:InternetGatewayDevice:1", [(PPP1, "/ppp"), (IP1, "/ip")])
    found = svc.services_of([("http://10.0.1.1:5000/rootDesc.xml", MINIUPNPD_V2),
                             ("http://10.0.1.1:49152/igd1.xml", v1),
                             ("http://10.0.1.1:5000/rootDesc.xml?again", MINIUPNPD_V2)], "10.0.1.1")
    assert shape(found) == [("WANIPConnection:2", "http://10.0.1.1:5000/ctl/IPConn"),
                            ("WANPPPConnection:1", "http://10.0.1.1:49152/ppp"),
                            ("WANIPConnection:1", "http://10.0.1.1:49152/ip")]


@pytest.mark.parametrize("document", [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><root>&a;</root>',
    "<root><device></root>",
    "<root>AT&T</root>",  # an unescaped & (seen in friendlyNames): not well-formed
    b"\x00\xff",
])
def test_unacceptable_descriptions_raise_router_xml_error(document):
    with pytest.raises(RouterXmlError):
        svc.parse_description(document, "http://10.0.0.1/r.xml", "10.0.0.1")


# ---------------------------------------------------------------------------------------------- the choice

IPV2 = WanService("WANIPConnection", 2, "http://gw/ip2", "http://gw/r.xml")
IPV1 = WanService("WANIPConnection", 1, "http://gw/ip1", "http://gw/r.xml")
PPP = WanService("WANPPPConnection", 1, "http://gw/ppp", "http://gw/r.xml")


@pytest.mark.parametrize("observed, chosen", [
    # the FRITZ!Box in PPPoE mode: the IP service is first in the document but not connected
    ([Observed(IPV1, "Disconnected", "0.0.0.0"), Observed(PPP, "Connected", "84.1.2.3")], PPP),
    ([Observed(IPV1, "Connected", ""), Observed(PPP, "Connected", "84.1.2.3")], PPP),  # empty address
    ([Observed(IPV1, "Connected", None), Observed(PPP, "Connected", "84.1.2.3")], PPP),  # no address answered
    ([Observed(PPP, "Connected", "84.1.2.3"), Observed(IPV1, "Connecting", "84.1.2.4")], PPP),
    # both connected and public: the type decides, WANIPConnection:2 > :1 > WANPPPConnection:1
    ([Observed(PPP, "Connected", "84.1.2.3"), Observed(IPV1, "Connected", "84.1.2.4")], IPV1),
    ([Observed(PPP, "Connected", "84.1.2.3"), Observed(IPV1, "Connected", "84.1.2.4"),
      Observed(IPV2, "Connected", "84.1.2.5")], IPV2),
    # a public address beats a CGNAT one, whatever the type
    ([Observed(IPV2, "Connected", "100.64.1.2"), Observed(PPP, "Connected", "84.1.2.3")], PPP),
    # connected with a private address still beats not connected
    ([Observed(IPV2, "Disconnected", "0.0.0.0"), Observed(PPP, "Connected", "10.1.2.3")], PPP),
    # GetStatusInfo not answered (optional on some routers): the address decides
    ([Observed(IPV1, None, "0.0.0.0"), Observed(PPP, None, "84.1.2.3")], PPP),
    # a service that could not be asked is last
    ([Observed(IPV2, problem="did not answer (timed out)"), Observed(PPP, "Disconnected", "")], PPP),
    # none connected: the preferred type, then document order
    ([Observed(PPP, "Disconnected", ""), Observed(IPV1, "Disconnected", "")], IPV1),
    ([Observed(IPV1, "Disconnected", ""), Observed(WanService("WANIPConnection", 1, "http://gw/b", "x"),
                                                    "Disconnected", "")], IPV1),
])
def test_choose(observed, chosen):
    choice = svc.choose(observed)
    assert choice.service == chosen and choice.source == "ranked"
    assert choice.reason.startswith(chosen.label) and len(choice.observed) == len(observed)


def test_the_reason_names_the_winner_and_the_others():
    choice = svc.choose([Observed(IPV1, "Disconnected", "0.0.0.0"), Observed(PPP, "Connected", "84.1.2.3")])
    assert choice.reason == ("WANPPPConnection:1: Connected, public address 84.1.2.3 — Connected with a public "
                             "address (others: WANIPConnection:1: not connected (Disconnected, 0.0.0.0))")
    assert choice.to_json()["candidates"][0] == {"type": PPP1, "control_url": "http://gw/ppp", "status": "Connected",
                                                 "external_ip": "84.1.2.3", "problem": None, "connected": True,
                                                 "public": True}


def test_cached_choice_is_found_only_while_the_description_still_has_it():
    entry = svc.choose([Observed(PPP, "Connected", "84.1.2.3")]).cache_entry()
    assert entry == {"type": PPP1, "control_url": "http://gw/ppp"}
    hit = svc.cached([IPV1, PPP], entry)
    assert hit is not None and hit.service == PPP and hit.source == "cache"
    assert svc.cached([IPV1, IPV2], entry) is None
    assert svc.cached([IPV1, PPP], None) is None and svc.cached([PPP], "garbage") is None


def test_only_one_service():
    choice = svc.only(IPV2)
    assert choice.source == "only" and choice.service == IPV2 and "only" in choice.reason
