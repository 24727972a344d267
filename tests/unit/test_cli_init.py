"""The starter config `natlink init` writes (pure over what was detected) parses as written, and the paths it
names exist; the no-config defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from natlink import starter
from natlink.config import load_config, parse_config


@pytest.mark.parametrize("detected,protocols,lan_ip", [
    (starter.Detected("10.0.1.1", "10.0.1.201", False, ("upnp", "pcp"), {"natpmp": "timeout"}),
     ("upnp", "pcp"), "10.0.1.201"),
    (starter.Detected("10.0.1.1", "10.0.1.201", True, (), {}), ("upnp", "natpmp", "pcp"), "10.0.1.201"),
    (starter.Detected(), ("upnp", "natpmp", "pcp"), "auto"),
])
def test_starter_config_parses_with_what_was_detected(detected, protocols, lan_ip) -> None:
    text = starter.starter_config(detected, state_dir="/tmp/natlink-state")
    cfg = parse_config(text, Path("/tmp/config.toml"))
    assert cfg.router.protocols == protocols and cfg.router.lan_ip == lan_ip
    assert cfg.router.gateway is None  # written as a comment: the default route keeps working after a move
    assert cfg.mappings == () and cfg.service.state_dir == "/tmp/natlink-state"
    if detected.lan_ip_dhcp:
        assert "DHCP-assigned" in text
    if detected.silent:
        assert "(no answer: NAT-PMP: timeout)" in text


def test_starter_config_names_an_example_that_exists() -> None:
    text = starter.starter_config(starter.Detected())
    named = Path(text.splitlines()[1].split(" in ", 1)[1])
    assert named == starter.example_config() and named.is_file()
    parse_config(named.read_text(), named)  # the shipped example is itself a valid config


def test_units_are_shipped_and_pointed_at_the_installed_binary() -> None:
    services = [u for u in starter.UNITS if u.endswith(".service")]
    for unit in starter.UNITS:
        text = starter.data_file("systemd", unit).read_text()
        moved = starter.unit_text(text, "/opt/natlink/bin/natlink")
        execs = [ln for ln in moved.splitlines() if ln.startswith("ExecStart=")]
        assert all(ln.startswith("ExecStart=/opt/natlink/bin/natlink ") for ln in execs), unit
        assert bool(execs) == (unit in services), unit
    assert starter.unit_text("ExecStart=/usr/local/bin/natlink run\n", starter.UNIT_BINARY) == \
        "ExecStart=/usr/local/bin/natlink run\n"


@pytest.mark.parametrize("euid,path,state", [
    (0, "/etc/natlink/config.toml", "/var/lib/natlink"),
    (1000, "/home/u/.config/natlink/config.toml", "/home/u/.local/state/natlink"),
])
def test_standard_places(euid, path, state) -> None:
    assert str(starter.default_config_path(euid, "/home/u")) == path
    assert starter.default_state_dir(euid, "/home/u") == state


def test_no_config_file_gives_the_defaults_only_when_asked(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("NATLINK_CONFIG", raising=False)
    monkeypatch.setattr("natlink.config.files.DEFAULT_PATHS", (tmp_path / "a.toml", tmp_path / "b.toml"))
    cfg = load_config(None, defaults_ok=True)
    assert cfg.path is None and cfg.router.lan_ip == "auto" and cfg.router.protocols == ("upnp", "natpmp", "pcp")
    with pytest.raises(Exception) as err:
        load_config(None)
    assert "NATLINK_CONFIG" not in str(err.value) and "natlink init" in err.value.hint
