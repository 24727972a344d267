"""The sandbox's config: the built-in story's, and a user's config adapted to the sandbox with a note for
every change (pure functions; validated by natlink's own config loader)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from natlink.config import parse_config
from natlink.demo.sandboxcfg import (
    SandboxFacts,
    default_config,
    sandbox_hostname,
    to_toml,
    user_config,
    user_zones,
    zone_for,
)

FACTS = SandboxFacts(lan_ip="10.0.1.201", gateway="10.0.1.1", dns_server="11.0.0.1", zone="home.example",
                     tsig_key_file="/dev/null", reflector_url="http://11.0.0.1:8765", state_dir="/tmp/demo-state")


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "tsig.key"
    path.write_text('key "k" {\n\talgorithm hmac-sha256;\n\tsecret "c2VjcmV0c2VjcmV0c2VjcmV0";\n};\n')
    path.chmod(0o600)
    return str(path)


def facts(key_file: str) -> SandboxFacts:
    return SandboxFacts(**{**FACTS.__dict__, "tsig_key_file": key_file})


def test_default_config_is_the_story(key_file: str) -> None:
    sc = default_config(facts(key_file))
    cfg = parse_config(sc.text)
    [m] = cfg.mappings
    assert (m.protocol, m.external_port, m.internal_ip, m.internal_port) == ("tcp", 3390, "10.0.1.201", 3389)
    [d] = cfg.ddns
    assert (d.provider, d.hostnames, d.options["server"]) == ("rfc2136", ("rdp.home.example",), "11.0.0.1")
    assert d.secrets["tsig_key"].name == key_file
    [p] = cfg.probes
    assert (p.mapping, p.via, p.reflector) == ("rdp", "reflector", "http://11.0.0.1:8765")
    assert cfg.public_ip.sources == ("router",)  # nothing may leave the sandbox
    assert cfg.router.gateway == "10.0.1.1" and cfg.schedule.jitter == 0
    assert cfg.service.state_dir == "/tmp/demo-state"
    assert sc.notes == [] and sc.tcp_ports() == [3389] and sc.hostnames == ["rdp.home.example"]


USER = """
[router]
lan_ip = "192.168.1.20"
gateway = "192.168.1.1"
igd_url = "http://192.168.1.1:5000/rootDesc.xml"
protocols = ["natpmp", "upnp"]
lease = "2h"

[[mapping]]
name = "web"
external_port = 8443
internal_port = 443

[[mapping]]
name = "ssh"
external_port = 2222
internal_port = 22
internal_ip = "192.168.1.30"

[[mapping]]
name = "game"
protocol = "udp"
external_port = 27015

[public_ip]
sources = ["router", "https://api.ipify.org"]
ipv6 = true

[[ddns]]
name = "noip"
provider = "noip"
hostnames = ["myhome.ddns.net"]
username = "me@example.com"
password_file = "{pw}"

[[ddns]]
name = "duck"
provider = "duckdns"
hostnames = ["myhome"]
token_env = "DUCK_TOKEN"

[[ddns]]
name = "six"
provider = "duckdns"
hostnames = ["other"]
token_env = "DUCK_TOKEN"
ipv4 = false
ipv6 = true

[[probe]]
mapping = "web"
via = "echoip"
echoip = "https://ifconfig.co"

[[probe]]
name = "outside"
target = "example.org:443"
reflector = "http://203.0.113.5:8765"

[service]
metrics = "127.0.0.1:9877"
[service.alerts]
webhook = "https://hooks.example/x"
"""


@pytest.fixture
def user(tmp_path: Path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2")
    pw.chmod(0o600)
    return parse_config(USER.replace("{pw}", str(pw)), tmp_path / "my.toml")


def test_user_config_points_everything_at_the_sandbox(user, key_file: str) -> None:
    sc = user_config(user, facts(key_file))
    cfg = parse_config(sc.text)  # natlink accepts what the sandbox runs
    assert [(m.name, m.protocol, m.external_port, m.internal_port, m.internal_ip) for m in cfg.mappings] == [
        ("web", "tcp", 8443, 443, "10.0.1.201"), ("ssh", "tcp", 2222, 22, "10.0.1.201"),
        ("game", "udp", 27015, 27015, "10.0.1.201")]
    assert cfg.router.protocols == ("natpmp", "upnp") and cfg.router.lease == 7200  # the user's choices stay
    assert (cfg.router.gateway, cfg.router.lan_ip, cfg.router.igd_url) == ("10.0.1.1", "10.0.1.201", None)
    assert cfg.public_ip.sources == ("router",) and cfg.public_ip.ipv6 is False
    # DDNS: every provider becomes RFC 2136 to the sandbox's knot; the user's secrets are not referenced
    assert [(d.name, d.provider, d.hostnames, d.options["server"]) for d in cfg.ddns] == [
        ("noip", "rfc2136", ("myhome.ddns.net",), "11.0.0.1"), ("duck", "rfc2136", ("myhome.duckdns.org",), "11.0.0.1")]
    assert {d.secrets["tsig_key"].name for d in cfg.ddns} == {key_file}
    assert "hunter2" not in sc.text and "DUCK_TOKEN" not in sc.text
    # probes: one per TCP mapping through the sandbox's reflector, keeping the user's probe name
    assert [(p.name, p.mapping, p.via, p.reflector) for p in cfg.probes] == [
        ("web", "web", "reflector", "http://11.0.0.1:8765"), ("ssh", "ssh", "reflector", "http://11.0.0.1:8765")]
    assert cfg.service.metrics is None and cfg.service.alerts.webhook is None
    assert sc.tcp_ports() == [22, 443]


def test_every_change_is_explained(user) -> None:
    notes = "\n".join(user_config(user, FACTS).notes)
    for expected in ("router.lan_ip 192.168.1.20 -> 10.0.1.201", "router.gateway 192.168.1.1 -> 10.0.1.1",
                     "router.igd_url", "mapping ssh: internal_ip 192.168.1.30 -> 10.0.1.201",
                     "mapping game: UDP 27015 is mapped, but the outside check is TCP only",
                     "https://api.ipify.org would leave the sandbox", "IPv4-only",
                     "ddns noip: myhome.ddns.net published by RFC 2136 to the sandbox's DNS server 11.0.0.1 "
                     "instead of noip", "your credentials are not used", "ddns six: IPv6-only",
                     "probe web: checked through the sandbox's reflector", "probe outside: target "
                     "example.org:443 is outside the sandbox", "service.alerts", "service.metrics 127.0.0.1:9877"):
        assert expected in notes


def test_a_config_without_mappings_says_so() -> None:
    sc = user_config(parse_config(""), FACTS)
    assert sc.mappings == [] and sc.tcp_ports() == []
    assert any("no [[mapping]]" in n for n in sc.notes)
    assert parse_config(sc.text).probes == ()


@pytest.mark.parametrize("hostname, zone", [
    ("rdp.home.example", "home.example"), ("myhome.ddns.net", "ddns.net"), ("example.com", "example.com"),
    ("a.b.c.example.", "b.c.example"), ("Home.Example.ORG", "example.org"),
])
def test_zone_for(hostname: str, zone: str) -> None:
    assert zone_for(hostname) == zone


def test_zones_and_duckdns_names(user) -> None:
    assert sandbox_hostname("duckdns", "myhome") == "myhome.duckdns.org"
    assert sandbox_hostname("duckdns", "myhome.duckdns.org") == "myhome.duckdns.org"
    assert sandbox_hostname("noip", "x.ddns.net.") == "x.ddns.net"
    assert user_zones(user) == ["ddns.net", "duckdns.org"]


def test_toml_writer_round_trips() -> None:
    doc = {"router": {"lan_ip": "10.0.1.201", "timeout": 2.5, "protocols": ["upnp", "pcp"], "skip": None},
           "mapping": [{"name": "a\"b", "allow_other_port": True}, {"name": "c", "allow_other_port": False}],
           "empty": []}
    assert tomllib.loads(to_toml(doc)) == {
        "router": {"lan_ip": "10.0.1.201", "timeout": 2.5, "protocols": ["upnp", "pcp"]},
        "mapping": [{"name": "a\"b", "allow_other_port": True}, {"name": "c", "allow_other_port": False}]}
    with pytest.raises(TypeError):
        to_toml({"x": {"y": object()}})
