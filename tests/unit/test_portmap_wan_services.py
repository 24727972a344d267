"""Several WAN connection services or several IGDs: natlink maps on the one Connected with a public address,
and every UPnP action of the session goes there (natlink.portmap.upnp_igd). Against the in-process fake
gateway on loopback, serving real-shaped descriptions (tests/unit/igd_descriptions.py) whose services differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_gateway import FakeGateway, FakeService
from igd_descriptions import FRITZ, igd
from natlink.config import parse_config
from natlink.portmap import discover
from natlink.portmap.base import Mapping, MappingError, RouterUnavailable
from natlink.portmap.reconcile import reconcile, unmap
from natlink.portmap.router import Router, save_cache
from natlink.portmap.session import unreachable
from natlink.portmap.upnp import UpnpClient
from natlink.portmap.upnp_igd import IgdClient, open_igd
from natlink.state import StateStore

ME = "127.0.0.1"
IP1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
IP2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
PPP1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"
IP_PATH, PPP_PATH = "/igdupnp/control/WANIPConn1", "/igdupnp/control/WANPPPConn1"
STATUS_CALLS = ("GetStatusInfo", "GetExternalIPAddress")


def fritz(ip_status: str = "Disconnected", ip_address: str = "0.0.0.0", ppp_status: str = "Connected",
          ppp_address: str = "84.1.2.3") -> FakeGateway:
    """A FRITZ!Box in PPPoE mode: WANIPConnection:1 first in the description, not connected; the PPP one is."""
    return FakeGateway(services={IP_PATH: FakeService(IP1, ip_status, ip_address),
                                 PPP_PATH: FakeService(PPP1, ppp_status, ppp_address)},
                       descriptions={"/igddesc.xml": FRITZ}).start()


@pytest.fixture
def box():
    gw = fritz()
    yield gw
    gw.stop()


def config(tmp_path: Path):
    text = (f'[router]\ngateway = "{ME}"\nlan_ip = "{ME}"\nlease = "1h"\ntimeout = 2\n\n'
            '[[mapping]]\nname = "rdp"\nprotocol = "tcp"\nexternal_port = 3390\ninternal_port = 3389\n'
            f'\n[service]\nstate_dir = "{tmp_path / "state"}"\n')
    path = tmp_path / "natlink.toml"
    path.write_text(text)
    return parse_config(text, path)


def router(client) -> Router:
    return Router(client=client, gateway=ME, lan_ip=ME, lan_ip_source="config", gateway_source="config",
                  igd_url=client.root_url, upnp_url=client.root_url)


def test_maps_on_the_connected_service_not_the_first_one(box, tmp_path):
    client = open_igd([box.url], ME, 2, gateway=ME)
    assert isinstance(client, IgdClient) and client.control_url.endswith(PPP_PATH)
    assert client.choice.source == "ranked" and "Connected, public address 84.1.2.3" in client.choice.reason
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router(client))
    assert report.ok and [a.action for a in report.actions] == ["add"]
    assert box.actions("AddPortMapping") == [PPP_PATH]  # the disconnected service got no AddPortMapping
    assert ("tcp", 3390) in box.services[PPP_PATH].table and box.services[IP_PATH].table == {}
    # every later action of the session goes there too: the table, the external address, the delete
    before = len(box.posts)
    assert [m.external_port for m in client.list()] == [3390] and client.external_ip() == "84.1.2.3"
    assert unmap(cfg, store, router=router(client))[0].ok and box.services[PPP_PATH].table == {}
    assert {path for path, _ in box.posts[before:]} == {PPP_PATH}
    # miniupnpc's binding takes the first service of the description: the one that is not connected
    assert UpnpClient(box.url, ME, 2).control_url.endswith(IP_PATH)


def test_the_choice_is_shown_with_the_router(box):
    r = router(open_igd([box.url], ME, 2, gateway=ME))
    shown = r.to_json()["wan_service"]
    assert shown["type"] == PPP1 and shown["source"] == "ranked"
    assert [(c["type"], c["connected"]) for c in shown["candidates"]] == [(PPP1, True), (IP1, False)]


def test_one_service_costs_no_extra_round_trip():
    with FakeGateway() as gw:  # miniupnpd-like: one WANIPConnection:2
        client = open_igd([gw.url], ME, 2, gateway=ME)
        assert client.choice.source == "only" and client.control_url.endswith("/ctl/IPConn")
        assert gw.gets == ["/rootDesc.xml"] and gw.posts == []  # the description only, as selectigd did


def test_the_cached_choice_skips_asking_and_is_checked_again_when_it_fails(box, tmp_path):
    store = StateStore(str(tmp_path / "state"))
    first = router(open_igd([box.url], ME, 2, gateway=ME))
    save_cache(store, first)
    entry = store.load("router")["wan_service"]
    assert entry == {"type": PPP1, "control_url": f"http://{ME}:{box.http_port}{PPP_PATH}"}
    box.posts.clear()
    again = open_igd([store.load("router")["igd_url"]], ME, 2, gateway=ME, cached=entry)
    assert again.choice.source == "cache" and again.control_url.endswith(PPP_PATH) and box.posts == []
    # the PPP session drops and the box comes up on its IP connection: the cached choice fails, all are asked
    box.services[PPP_PATH].status, box.services[PPP_PATH].external_ip = "Disconnected", "0.0.0.0"
    box.services[IP_PATH].status, box.services[IP_PATH].external_ip = "Connected", "84.1.2.9"
    assert again.external_ip() == "84.1.2.9" and again.control_url.endswith(IP_PATH)
    assert again.choice.source == "ranked"
    again.add(Mapping("tcp", 3390, ME, 3389, "natlink:rdp"), 3600)
    assert box.actions("AddPortMapping") == [IP_PATH]


def test_a_cached_service_the_description_no_longer_has_is_ranked_again(box):
    stale = {"type": IP2, "control_url": f"http://{ME}:{box.http_port}/gone"}
    assert open_igd([box.url], ME, 2, gateway=ME, cached=stale).choice.source == "ranked"


def test_several_igds_answering_ssdp(tmp_path):
    """Two IGDs at the gateway: the first (IGD v2) is not connected, the second (IGD v1) is."""
    v1 = igd("urn:schemas-upnp-org:device:InternetGatewayDevice:1", [(IP1, "/v1/ip")])
    with FakeGateway(services={"/ctl/IPConn": FakeService(IP2, "Disconnected", ""),
                               "/v1/ip": FakeService(IP1, "Connected", "84.1.2.3")},
                     descriptions={"/rootDesc.xml": _miniupnpd(), "/igd1.xml": v1}) as gw:
        d = discover.burst(ME, ME, ("upnp",), timeout=2, ssdp_port=gw.ssdp_port, multicast=False)
        upnp = d.heard["upnp"]
        assert sorted(upnp.locations) == sorted(gw.urls)
        client = open_igd(upnp.locations, ME, 2, gateway=ME)
        assert client.control_url.endswith("/v1/ip") and client.root_url.endswith("/igd1.xml")
        client.add(Mapping("tcp", 3390, ME, 3389, "natlink:rdp"), 3600)
        assert gw.actions("AddPortMapping") == ["/v1/ip"] and gw.services["/ctl/IPConn"].table == {}


def _miniupnpd() -> str:
    from igd_descriptions import MINIUPNPD_V2

    return MINIUPNPD_V2.replace("http://10.0.1.1/", f"http://{ME}/")


def test_a_service_that_does_not_answer_is_ranked_last():
    with FakeGateway(services={"/ctl/IPConn": FakeService(IP2, "Connected", "84.1.2.3")},
                     descriptions={"/r.xml": igd("urn:schemas-upnp-org:device:InternetGatewayDevice:2",
                                                 [(IP2, "http://127.0.0.1:9/dead"), (IP2, "/ctl/IPConn")])}) as gw:
        client = open_igd([gw.url], ME, 1, gateway=ME)
        assert client.control_url.endswith("/ctl/IPConn")
        assert "did not answer" in client.choice.reason


def test_an_unreachable_control_url_is_router_unavailable_for_the_session():
    with FakeGateway() as gw:
        client = open_igd([gw.url], ME, 1, gateway=ME)
    # the router is gone (its HTTP port closed): the session must rediscover, not report a refusal
    with pytest.raises(RouterUnavailable):
        client.external_ip()
    with pytest.raises(MappingError) as err:
        client.add(Mapping("tcp", 3390, ME, 3389, "natlink:rdp"), 3600)
    assert err.value.code is not None and err.value.code < 0 and unreachable(err.value)


def test_no_description_is_router_unavailable():
    with FakeGateway() as gw:
        url = gw.url.replace("/rootDesc.xml", "/missing.xml")
        with pytest.raises(RouterUnavailable, match="HTTP 404"):
            open_igd([url], ME, 1, gateway=ME)


def test_a_description_natlinks_parser_refuses_goes_to_the_binding():
    broken = igd("urn:schemas-upnp-org:device:InternetGatewayDevice:1", [(IP1, "/ctl/IPConn")]).replace(
        "<deviceType>urn:schemas-upnp-org:device:WANDevice:1", "<friendlyName>AT&T</friendlyName>"
        "<deviceType>urn:schemas-upnp-org:device:WANDevice:1")
    with FakeGateway(services={"/ctl/IPConn": FakeService(IP1)}, descriptions={"/r.xml": broken}) as gw:
        client = open_igd([gw.url], ME, 2, gateway=ME)
        assert isinstance(client, UpnpClient) and client.external_ip() == "11.0.0.2"
