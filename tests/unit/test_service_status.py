"""`natlink status` from a state directory: the document, the human lines, the exit code."""

from __future__ import annotations

import json
import os
import time

import pytest

from natlink.cli import main
from natlink.service.statusview import gather, render
from natlink.state import InstanceLock, StateStore

CONFIG = """
[router]
lan_ip = "10.0.1.201"
[[mapping]]
name = "rdp"
external_port = 3390
internal_port = 3389
[[mapping]]
name = "web"
external_port = 8443
[[ddns]]
name = "dyn"
provider = "dyndns2"
hostnames = ["a.example.net"]
server = "http://127.0.0.1:9"
username = "u"
password_file = "pw"
[[probe]]
mapping = "rdp"
reflector = "http://127.0.0.1:9"
[service]
state_dir = "state"
"""


@pytest.fixture
def setup(tmp_path):
    cfg_path = tmp_path / "natlink.toml"
    cfg_path.write_text(CONFIG)
    (tmp_path / "pw").write_text("x")
    store = StateStore(tmp_path / "state")
    now = time.time()
    store.save("service", {"pid": os.getpid(), "running": True, "heartbeat": now - 5, "started": now - 3600,
                           "mode": "service",
                           "jobs": {"mappings": {"last_outcome": "unchanged", "last_success": now - 60, "failures": 0}}})
    store.save("mappings", {"rdp": {"name": "rdp", "via": "upnp", "protocol": "tcp", "external_port": 3390,
                                    "internal_ip": "10.0.1.201", "internal_port": 3389, "lease": 3600,
                                    "granted_at": now - 600, "renew_at": now + 1200}})
    store.save("publicip", {"public_ipv4": "11.0.0.2", "router_wan_ipv4": "11.0.0.2", "verdict": "public",
                            "checked_at": now - 30})
    store.save("ddns-dyn", {"published": {"ipv4": "11.0.0.2"}, "last_success": now - 100,
                            "last_outcome": "badauth", "last_message": "the provider rejected the credentials",
                            "fatal": True})
    store.save("probe", {"checked_at": now - 10, "ok": True, "results": [
        {"name": "rdp", "target": "11.0.0.2:3390", "family": "ipv4", "verdict": "verified", "ok": True}]})
    return cfg_path, store, now


def test_gather_and_render(setup):
    cfg_path, store, now = setup
    from natlink.config import load_config

    lock = InstanceLock(store.directory)  # what a running service holds
    lock.acquire()
    try:
        doc = gather(load_config(str(cfg_path)), store, now)
    finally:
        lock.release()
    assert doc["service"]["state"] == "running"
    rdp, web = doc["mappings"]
    assert rdp["present"] and rdp["via"] == "upnp" and round(rdp["lease_left"]) == 3000
    assert rdp["last_verified"] == pytest.approx(now - 60)
    assert not web["present"]
    assert doc["ddns"][0]["stopped"] and doc["ddns"][0]["outcome"] == "badauth"
    assert doc["public_ip"]["verdict"] == "public"
    assert doc["ok"] is False and doc["problems"] == ["mapping web missing", "ddns dyn badauth"]
    text = "\n".join(render(doc, now))
    assert "service:   running" in text
    assert "mapping   rdp: TCP 3390 -> 10.0.1.201:3389 present via upnp, lease 50m left, verified 1m ago" in text
    assert "mapping   web: TCP 8443 -> 10.0.1.201:8443 MISSING" in text
    assert "public IP: 11.0.0.2 (public; router WAN 11.0.0.2; checked 30s ago)" in text
    assert "STOPPED: the provider rejected the credentials" in text
    assert "probe     rdp 11.0.0.2:3390 (ipv4): verified" in text


def test_status_says_when_the_service_is_not_running(setup, capsys):
    cfg_path, store, now = setup
    doc = store.load("service")
    doc.update(pid=2 ** 22 + 99, running=True)  # a pid that cannot exist: killed without a clean stop
    store.save("service", doc)
    assert main(["-c", str(cfg_path), "status"]) == 1
    out = capsys.readouterr().out
    assert "service:   not running (it ended without a clean stop: crash or kill)" in out
    assert main(["-c", str(cfg_path), "--json", "status"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["service"]["state"] == "dead" and "service dead" in data["problems"]


def test_status_with_an_empty_state_dir(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[service]\nstate_dir = "{tmp_path / "nothing"}"\n')
    assert main(["-c", str(cfg), "status"]) == 1
    out = capsys.readouterr().out
    assert "never run with this state directory" in out
    assert "public IP: not checked yet" in out


def test_every_status_line_says_how_old_its_fact_is(setup):
    cfg_path, store, now = setup
    from natlink.config import load_config

    lines = render(gather(load_config(str(cfg_path)), store, now), now)
    ages = ("ago", "never", "just now", "not checked yet", "no result yet")
    undated = [x for x in lines if not x.startswith("overall") and not any(a in x for a in ages)]
    assert not undated, undated


def test_status_shows_what_the_name_server_answered_in_words(setup):
    """The authoritative answer (in the JSON since it is kept) is on the text lines too, with its age."""
    cfg_path, store, now = setup
    from natlink.config import load_config

    doc = store.load("ddns-dyn")
    doc["hosts"] = {"a.example.net": {"published": {"ipv4": "11.0.0.2"}, "authoritative": {
        "addresses": {"ipv4": ["11.0.0.2"]}, "server": "192.0.2.53", "at": now - 120, "problem": None}}}
    store.save("ddns-dyn", doc)
    text = "\n".join(render(gather(load_config(str(cfg_path)), store, now), now))
    assert "  a.example.net: its name server (192.0.2.53) answers 11.0.0.2, as published (asked 2m ago)" in text
    doc["hosts"]["a.example.net"]["authoritative"]["addresses"] = {"ipv4": ["198.51.100.7"]}
    store.save("ddns-dyn", doc)
    text = "\n".join(render(gather(load_config(str(cfg_path)), store, now), now))
    assert "answers 198.51.100.7, NOT what natlink published (11.0.0.2) (asked 2m ago)" in text
    doc["hosts"]["a.example.net"]["authoritative"].update(addresses={}, problem="no answer from 192.0.2.53 in 2 s")
    store.save("ddns-dyn", doc)
    text = "\n".join(render(gather(load_config(str(cfg_path)), store, now), now))
    assert "a.example.net: its name server could not be asked: no answer from 192.0.2.53 in 2 s (asked 2m ago)" in text


def test_status_says_when_the_name_server_was_never_asked(setup):
    cfg_path, store, now = setup
    from natlink.config import load_config

    text = "\n".join(render(gather(load_config(str(cfg_path)), store, now), now))
    assert "  a.example.net: its name server: never asked yet" in text
