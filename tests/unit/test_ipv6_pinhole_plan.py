"""Pure parts of IPv6 pinholes and the per-family verdicts, as tables."""

from __future__ import annotations


import pytest

from natlink import families
from natlink.config import parse_config
from natlink.errors import ConfigError
from natlink.ipv6addr import Selection
from natlink.portmap.pinhole import ADD, DELETE, MOVE, RENEW, Hole, Want, plan, port_notes, wants
from natlink.portmap.pinhole_upnp import PinholeError, control_path, envelope, parse_answer

A = "2600:1:1::201"


def want(name: str = "web", address: str = A, port: int = 8080, ext: int = 8080) -> Want:
    return Want(name, "tcp", port, address, 3600, ext)


def hole(name: str = "web", address: str = A, port: int = 8080) -> Hole:
    return Hole(name, "tcp", port, address, "upnp", unique_id=3, lease=3600)


@pytest.mark.parametrize("wanted, owned, names, actions", [
    ([want()], {}, None, [(ADD, "web")]),
    ([want()], {"web": hole()}, None, [(RENEW, "web")]),
    ([want(address="2600:1:2::201")], {"web": hole()}, None, [(MOVE, "web")]),
    ([want(port=8081)], {"web": hole()}, None, [(MOVE, "web")]),
    ([], {"web": hole()}, None, [(DELETE, "web")]),
    ([want("a")], {"b": hole("b")}, ["a"], [(ADD, "a")]),  # a named run leaves other pinholes alone
])
def test_plan(wanted: list[Want], owned: dict[str, Hole], names: list[str] | None,
              actions: list[tuple[str, str]]) -> None:
    assert [(s.action, s.name) for s in plan(wanted, owned, names)] == actions


def _cfg(text: str):
    return parse_config(text)


def test_wants_default_from_public_ip_and_ipv6_host_in_the_current_prefix() -> None:
    cfg = _cfg("""
[public_ip]
ipv6 = true
sources = ["router"]
[[mapping]]
name = "web"
external_port = 8080
[[mapping]]
name = "nas"
external_port = 5001
ipv6_host = "::99"
lease = 0
[[mapping]]
name = "v4only"
external_port = 3390
internal_port = 3389
ipv6 = false
""")
    got = wants(cfg, Selection("2600:1:2::201", 64, "eth0"))
    assert [(w.name, w.address, w.port, w.lease) for w in got] == [
        ("web", "2600:1:2::201", 8080, 3600), ("nas", "2600:1:2::99", 5001, 86400)]
    assert wants(cfg, Selection(None, problem="none")) == []


def test_mapping_ipv6_defaults_to_off() -> None:
    cfg = _cfg('[[mapping]]\nname = "web"\nexternal_port = 8080\n')
    assert cfg.mapping_ipv6(cfg.mappings[0]) is False


def test_bad_ipv6_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ipv6_host"):
        _cfg('[[mapping]]\nname = "web"\nexternal_port = 8080\nipv6_host = "2600:1:1::5"\n')


def test_port_notes() -> None:
    assert port_notes([want(ext=18080), want("b")]) == [
        "web: IPv6 has no port translation: over IPv6 clients connect to port 8080, not 18080"]


ROOT = b"""<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType>
<controlURL>/ctl/IP6FCtl</controlURL></service></serviceList></device></root>"""


def test_control_path() -> None:
    assert control_path(ROOT) == "/ctl/IP6FCtl"
    assert control_path(ROOT.replace(b"WANIPv6FirewallControl", b"Other")) is None


def test_entities_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>'
    with pytest.raises(PinholeError, match="no readable SOAP"):
        parse_answer(200, bomb)


def test_soap_answer_and_fault() -> None:
    ok = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:AddPinholeResponse '
          b'xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"><UniqueID>7</UniqueID>'
          b'</u:AddPinholeResponse></s:Body></s:Envelope>')
    assert parse_answer(200, ok) == {"UniqueID": "7"}
    fault = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><detail>'
             b'<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>606</errorCode>'
             b'<errorDescription>Action not authorized</errorDescription></UPnPError></detail></s:Fault>'
             b'</s:Body></s:Envelope>')
    with pytest.raises(PinholeError) as info:
        parse_answer(500, fault)
    assert info.value.code == 606


def test_envelope_escapes() -> None:
    assert b"<RemoteHost>&lt;x&gt;</RemoteHost>" in envelope("AddPinhole", [("RemoteHost", "<x>")])


V4_OPEN = families.ipv4("11.0.0.2", None, True)
V4_CGNAT = families.ipv4(None, "the router reports no external address", None)
V6_OPEN = families.ipv6(1, True, A, None)


@pytest.mark.parametrize("v4, v6, line", [
    (V4_CGNAT, V6_OPEN, "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6"),
    (families.ipv4("100.64.0.2", "CGNAT address", None), V6_OPEN,
     "IPv4 is carrier-grade NAT; IPv6 is open — clients need IPv6"),
    (V4_OPEN, V6_OPEN, "IPv4 and IPv6 are open — every client can connect"),
    (V4_OPEN, families.ipv6(0, False, None, None), "IPv4 is open"),
    (V4_OPEN, families.ipv6(1, False, None, "no global address"), "IPv4 is open; IPv6 is closed: no global address"),
    (V4_CGNAT, families.ipv6(1, False, None, "router offers no IPv6 firewall control"),
     "IPv4 is carrier-grade NAT (or another NAT: the router reports no external address); IPv6 is closed: "
     "router offers no IPv6 firewall control"),
])
def test_summary(v4: families.FamilyVerdict, v6: families.FamilyVerdict, line: str) -> None:
    assert families.summary(v4, v6) == line
    assert families.reachable(v4, v6) == (families.OPEN in (v4.state, v6.state))


@pytest.mark.parametrize("wan, problem, ok, state", [
    ("11.0.0.2", None, True, families.OPEN),
    ("11.0.0.2", None, False, families.FAILED),
    ("11.0.0.2", None, None, families.UNKNOWN),
    ("192.168.1.2", "private: double NAT", None, families.BLOCKED),
    (None, "no external address", None, families.CGNAT),
])
def test_ipv4_states(wan: str | None, problem: str | None, ok: bool | None, state: str) -> None:
    assert families.ipv4(wan, problem, ok).state == state


@pytest.mark.parametrize("v4, addr, holes, six, summary", [
    ("cgnat", A, ["web"], "pinholes recorded by natlink for web (unverified here",
     "IPv4 is carrier-grade NAT; IPv6 can carry the server — clients need IPv6"),
    ("cgnat", A, [], "no pinhole: the router's IPv6 firewall blocks",
     "IPv4 is carrier-grade NAT; IPv6 can carry the server — clients need IPv6 (open a pinhole with natlink map)"),
    ("public", A, [], "no pinhole", "IPv4 is public; IPv6 has a global address too"),
    ("cgnat", None, [], "no global address (none found)", "IPv4 is carrier-grade NAT"),
])
def test_ip_lines(v4: str, addr: str | None, holes: list[str], six: str, summary: str) -> None:
    _four, got_six, got_summary = families.ip_lines(v4, addr, None, holes)
    assert six in got_six and got_summary == summary


def test_doctor_ipv6_link_only_when_asked_for() -> None:
    from natlink.doctor.checks_ipv6 import ipv6_checks

    cfg = _cfg('[[mapping]]\nname = "web"\nexternal_port = 8080\n')
    assert ipv6_checks(cfg, store=None) == []  # nothing asks for IPv6: no link 10, no I/O


def test_status_shows_recorded_pinholes_with_their_age(tmp_path) -> None:
    import time as _time

    from natlink.portmap.pinhole import save_owned
    from natlink.service.statusview import gather, render
    from natlink.state import StateStore

    store = StateStore(tmp_path / "state")
    now = _time.time()
    save_owned(store, {"web": Hole("web", "tcp", 8080, A, "upnp", unique_id=2, lease=3600, at=now - 60),
                       "old": Hole("old", "tcp", 8081, A, "pcp", nonce="00" * 12, lease=60, at=now - 600)})
    lines = render(gather(None, store, now), now)
    assert f"pinhole   web: TCP [{A}]:8080 via UPnP, lease 59m left, confirmed by the router 1m ago" in lines, lines
    assert any(ln.startswith("pinhole   old:") and "EXPIRED" in ln for ln in lines)


def test_check_config_names_the_pinhole(tmp_path, capsys) -> None:
    from natlink.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[mapping]]\nname = "web"\nexternal_port = 18080\ninternal_port = 8080\nipv6 = true\n'
                   f'[[mapping]]\nname = "nas"\nexternal_port = 5001\nipv6_host = "::99"\n[public_ip]\nipv6 = true\n'
                   f'[service]\nstate_dir = "{tmp_path / "st"}"\n')
    assert main(["-c", str(cfg), "--json", "check-config"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["ipv6"], m["ipv6_host"]) for m in doc["mappings"]] == [("web", True, None),
                                                                                ("nas", True, "::99")]
