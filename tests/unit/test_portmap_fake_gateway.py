"""CPU-only, no root: the discovery race, the UDP retransmits, reconcile's verification and router quirks,
against the in-process fake gateway on loopback (tests/unit/fake_gateway.py). UPnP quirks run on both UPnP
engines: natlink's own SOAP ("upnp") and the real miniupnpc binding ("upnp-binding", the fallback for
descriptions natlink's parser refuses). The same behaviours against real miniupnpd are in
tests/lab/test_portmap_faults_lab.py."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from fake_gateway import FakeGateway
from natlink.config import parse_config
from natlink.portmap import discover
from natlink.portmap.base import AddRequest, Mapping
from natlink.portmap.natpmp import NatPmpClient
from natlink.portmap.pcp import PcpClient
from natlink.portmap.reconcile import reconcile, unmap
from natlink.portmap.router import Router
from natlink.portmap.udp import NoAnswer
from natlink.state import StateStore

ME = "127.0.0.1"


@pytest.fixture
def gw():
    with FakeGateway() as g:
        yield g


def config(tmp_path: Path, *, internal_ip: str | None = None, lease: str = "1h", mappings: int = 1):
    text = (f'[router]\ngateway = "{ME}"\nlan_ip = "{ME}"\nlease = "{lease}"\ntimeout = 2\n\n'
            '[[mapping]]\nname = "rdp"\nprotocol = "tcp"\nexternal_port = 3390\ninternal_port = 3389\n'
            + (f'internal_ip = "{internal_ip}"\n' if internal_ip else "")
            + "".join(f'\n[[mapping]]\nname = "m{i}"\nexternal_port = {3390 + i}\ninternal_port = {3389 + i}\n'
                      for i in range(1, mappings))
            + f'\n[service]\nstate_dir = "{tmp_path / "state"}"\n')
    path = tmp_path / "natlink.toml"
    path.write_text(text)
    return parse_config(text, path)


def router_for(gw: FakeGateway, protocol: str) -> Router:
    if protocol == "natpmp":
        client = NatPmpClient(ME, timeout=2, self_ip=ME, port=gw.pmp_port)
    elif protocol == "pcp":
        client = PcpClient(ME, ME, timeout=2, port=gw.pmp_port)
    elif protocol == "upnp":
        from natlink.portmap.upnp_igd import open_igd

        client = open_igd([gw.url], ME, 2, gateway=ME)
    else:
        from natlink.portmap.upnp import UpnpClient

        client = UpnpClient(gw.url, ME, 2)
    return Router(client=client, gateway=ME, lan_ip=ME, lan_ip_source="config", gateway_source="config",
                  igd_url=gw.url if protocol.startswith("upnp") else None)


UPNP = ["upnp", "upnp-binding"]


# --------------------------------------------------------------------------- the race


def test_burst_hears_every_protocol_although_upnp_is_slower(gw):
    gw.quirks.ssdp_delay = 0.06
    d = discover.burst(ME, ME, ("upnp", "natpmp", "pcp"), timeout=2, pmp_port=gw.pmp_port,
                       ssdp_port=gw.ssdp_port, multicast=False)
    assert sorted(d.answered) == ["natpmp", "pcp", "upnp"]
    h = d.heard
    assert h["natpmp"].elapsed < h["upnp"].elapsed and h["upnp"].elapsed >= 0.05
    assert h["upnp"].location == gw.url and h["natpmp"].external_ip == "11.0.0.2" and h["pcp"].epoch >= 1000
    assert d.waited < discover.WINDOW  # everything answered: the window closed early
    assert gw.received["natpmp"] == 1 and gw.received["pcp"] == 1


def test_burst_stops_at_the_window_and_says_not_waited_for(gw):
    gw.quirks.ssdp_delay = 1.0  # far beyond the window
    d = discover.burst(ME, ME, ("upnp", "natpmp"), timeout=2, pmp_port=gw.pmp_port, ssdp_port=gw.ssdp_port,
                       multicast=False)
    assert d.answered == ["natpmp"] and 0.24 <= d.waited < 0.5
    assert d.describe("upnp").startswith("no answer within ") and "not waited for longer" in d.describe("upnp")


def test_burst_resends_until_something_answers(gw):
    gw.quirks.drop_udp = 2  # the first two requests (NAT-PMP and PCP of the first burst) are lost
    d = discover.burst(ME, ME, ("natpmp", "pcp"), timeout=2, pmp_port=gw.pmp_port, multicast=False)
    assert sorted(d.answered) == ["natpmp", "pcp"] and d.waited >= 0.25
    assert gw.received["natpmp"] == 2 and gw.received["pcp"] == 2


# --------------------------------------------------------------------------- the retransmit loop


def test_natpmp_retransmits_on_the_rfc_schedule(gw):
    gw.quirks.drop_udp = 2
    reply = NatPmpClient(ME, timeout=2, port=gw.pmp_port).probe()
    assert reply.address == "11.0.0.2" and gw.received["natpmp"] == 3  # sent at 0, 0.25 and 0.75 s


def test_no_answer_within_the_timeout_is_no_answer(gw):
    gw.quirks.drop_udp = 100
    with pytest.raises(NoAnswer, match="within 0.9 s"):
        NatPmpClient(ME, timeout=0.9, port=gw.pmp_port).probe()
    assert gw.received["natpmp"] == 3  # 0, 0.25, 0.75


def test_pipelined_requests_each_keep_their_own_retransmits(gw, tmp_path):
    cfg, store = config(tmp_path, mappings=6), StateStore(str(tmp_path / "state"))
    assert reconcile(cfg, store, router=router_for(gw, "natpmp")).ok
    gw.restart_daemon(keep_epoch=True)
    before = gw.received["natpmp"]
    gw.quirks.drop_maps = 3  # the first three of the six map requests, sent at once, are lost
    again = reconcile(cfg, store, router=router_for(gw, "natpmp"))
    assert again.ok and [(a.action, a.external_port) for a in again.actions] == [
        ("verify", 3390 + i) for i in range(6)]
    assert [gw.table[("tcp", 3390 + i)].internal_port for i in range(6)] == [3389 + i for i in range(6)]
    # the public-address request, 6 map requests, each of the 3 lost ones resent once (after its own 250 ms)
    assert gw.received["natpmp"] - before == 10


@pytest.mark.parametrize("protocol", ["natpmp", "pcp"])
def test_pipelined_answers_in_another_order_go_to_their_own_requests(protocol):
    """A gateway that answers a burst of map requests last first: each grant is still its own mapping's."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((ME, 0))
    server.settimeout(2)
    wants = [Mapping("tcp", 4000 + i, ME, 5000 + i) for i in range(4)]

    def answer_backwards() -> None:
        got = [server.recvfrom(1100) for _ in wants]
        for data, peer in reversed(got):
            if protocol == "natpmp":
                internal, external = struct.unpack_from("!HH", data, 4)
                server.sendto(struct.pack("!BBHIHHI", 0, 130, 0, 7, internal, external, 3600), peer)
            else:
                head = struct.pack("!BBBBII", 2, 0x81, 0, 0, 3600, 7) + bytes(12)
                server.sendto(head + data[24:60], peer)

    threading.Thread(target=answer_backwards, daemon=True).start()
    port = server.getsockname()[1]
    client = (NatPmpClient(ME, timeout=2, self_ip=ME, port=port) if protocol == "natpmp"
              else PcpClient(ME, ME, timeout=2, port=port))
    grants = client.add_many([AddRequest(w, 3600) for w in wants])
    server.close()
    assert [(g.external_port, g.internal_port) for g in grants] == [(w.external_port, w.internal_port) for w in wants]


# --------------------------------------------------------------------------- reconcile verifies


@pytest.mark.parametrize("protocol", ["natpmp", "pcp", *UPNP])
def test_daemon_restart_keeping_the_epoch_is_repaired_by_the_next_reconcile(gw, tmp_path, protocol):
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    first = reconcile(cfg, store, router=router_for(gw, protocol))
    assert first.ok and [a.action for a in first.actions] == ["add"] and ("tcp", 3390) in gw.table
    gw.restart_daemon(keep_epoch=True)
    again = reconcile(cfg, store, router=router_for(gw, protocol))
    assert again.ok and not again.epoch_lost
    assert [a.action for a in again.actions] == (["add"] if protocol in UPNP else ["verify"])
    assert gw.table[("tcp", 3390)].internal_port == 3389
    assert all("left" not in s.reason for s in again.plan.steps) or protocol in UPNP


def test_mapping_for_another_host_never_reaches_natpmp(gw, tmp_path):
    cfg, store = config(tmp_path, internal_ip="127.0.0.9"), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, "natpmp"))
    assert not report.ok and "NAT-PMP maps only to the host that asks" in report.errors[0].error.message
    assert gw.received["natpmp"] == 1 and gw.table == {}  # only the WAN address was asked


@pytest.mark.parametrize("allowed", [False, True])
def test_pcp_third_party(gw, tmp_path, allowed):
    gw.quirks.pcp_third_party = allowed
    cfg, store = config(tmp_path, internal_ip="127.0.0.9"), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, "pcp"))
    assert report.ok is allowed
    if allowed:
        assert gw.table[("tcp", 3390)].internal_ip == "127.0.0.9"
    else:
        assert "pcp_allow_thirdparty" in report.errors[0].error.hint and ("tcp", 3390) not in gw.table


@pytest.mark.parametrize("protocol", ["natpmp", "pcp"])
def test_another_port_offered_is_given_back(gw, tmp_path, protocol):
    gw.quirks.offer_port = 3391  # 3390 taken: the gateway maps another port
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, protocol))
    err = report.errors[0].error
    assert not report.ok and "offered external port 3391 instead of 3390" in err.message
    assert "allow_other_port" in err.hint and err.mapper == protocol
    assert gw.table == {}  # the offered port went back to the gateway


# --------------------------------------------------------------------------- UPnP quirks


@pytest.mark.parametrize("code", [725, 402])
@pytest.mark.parametrize("engine", UPNP)
def test_permanent_only_router(gw, tmp_path, code, engine):
    gw.quirks.permanent_only = code
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, engine))
    assert report.ok and report.actions[0].lease == 0 and "permanent" in report.actions[0].detail
    assert gw.table[("tcp", 3390)].lease == 0
    assert store.load("mappings")["rdp"]["permanent_only"] is True
    actions = unmap(cfg, store, router=router_for(gw, engine))  # natlink removes what it made permanent
    assert [a.ok for a in actions] == [True] and gw.table == {}


@pytest.mark.parametrize("address", ["0.0.0.0", ""])
@pytest.mark.parametrize("engine", UPNP)
def test_not_connected_router_gets_nothing_added(gw, tmp_path, address, engine):
    gw.quirks.external_ip = address
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, engine))
    assert not report.ok and "no external address" in report.wan_problem and gw.table == {}


@pytest.mark.parametrize("engine", UPNP)
def test_full_table_is_a_clear_error(gw, tmp_path, engine):
    gw.quirks.table_full = True
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, engine))
    err = report.errors[0].error
    assert err.code == 501 and "table may be full" in err.message and "natlink mappings" in err.hint


@pytest.mark.parametrize("engine", UPNP)
def test_success_the_read_back_does_not_show_is_a_failure_naming_the_router(gw, tmp_path, engine):
    gw.quirks.forget_adds = True
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    report = reconcile(cfg, store, router=router_for(gw, engine))
    assert not report.ok
    assert gw.url in report.errors[0].error.message and "read back" in report.errors[0].error.message


@pytest.mark.parametrize("engine", UPNP)
def test_broken_table_listing_falls_back_to_the_entry_walk(gw, tmp_path, engine):
    cfg, store = config(tmp_path), StateStore(str(tmp_path / "state"))
    assert reconcile(cfg, store, router=router_for(gw, engine)).ok
    gw.quirks.list_garbage = True
    router = router_for(gw, engine)
    table = router.list()
    assert [(m.protocol, m.external_port) for m in table] == [("tcp", 3390)]
    assert router.client.lists_in_one_call is False  # remembered: the walk from now on
