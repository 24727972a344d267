"""The status page's facts (natlink/web/view.py) and their HTML (render.py): what is current, what is unverified
and why, per link; everything escaped."""

from __future__ import annotations

import pytest

from natlink.web import render
from natlink.web.view import build, unreadable

NOW = 1_800_000_000.0
STARTED = NOW - 600


def doc(state: str = "running", started: float = STARTED, **over: object) -> dict:
    d = {
        "ok": True, "problems": [], "now": NOW,
        "config": {"path": "/etc/natlink.toml", "error": None, "service_loaded": None},
        "service": {"state": state, "pid": 42, "started": started, "heartbeat": NOW - 5, "stopped": None,
                    "version": "1.0", "jobs": {"mappings": {"last_outcome": "unchanged", "last_end": NOW - 30,
                                                            "last_success": NOW - 30, "last_reason": "schedule"}},
                    "counters": {}, "router": {}, "stopped_entries": {}},
        "public_ip": {"public_ipv4": "11.0.0.2", "verdict": "public", "router_wan_ipv4": "11.0.0.2",
                      "problem": None, "checked_at": NOW - 20},
        "mappings": [{"name": "rdp", "protocol": "tcp", "external_port": 3390, "internal": "10.0.1.201:3389",
                      "present": True, "via": "upnp", "granted_at": NOW - 300, "renew_at": NOW + 1500,
                      "lease_left": 3300.0, "last_verified": NOW - 30, "last_checked": NOW - 30}],
        "ddns": [{"name": "home", "provider": "rfc2136", "hostnames": ["a.example"], "published": {"ipv4": "11.0.0.2"},
                  "last_success": NOW - 20, "last_attempt": NOW - 20, "outcome": "good", "message": "updated",
                  "next_attempt": None, "stopped": False, "hint": None}],
        "probes": {"checked_at": NOW - 10, "results": [
            {"name": "rdp", "target": "11.0.0.2:3390", "family": "ipv4", "verdict": "verified", "ok": True,
             "detail": "reflector connected", "identity": "nonce"}]},
    }
    d.update(over)
    return d


PUBLICIP = {"public_ipv4": "11.0.0.2", "sources": [
    {"source": "router", "family": 4, "address": "11.0.0.2", "accepted": True},
    {"source": "https://ip.example", "family": 4, "address": None, "accepted": False, "error": "timeout"}]}


def facts(card) -> dict:
    return {f.label: f for f in card.facts}


def test_facts_seen_by_the_running_service_are_current():
    v = build(doc(), PUBLICIP, [], NOW)
    ip = facts(v.addresses[0])
    assert ip["address"].value == "11.0.0.2" and ip["address"].current and ip["address"].level == "good"
    assert ip["verdict"].value == "public"
    assert ip["sources agreed"].value == "router"
    assert "https://ip.example: timeout" in ip["other answers"].value
    m = facts(v.mappings[0])
    assert m["mapping"].value == "TCP 3390 → 10.0.1.201:3389" and m["on the router"].current
    assert m["renews"].at == NOW + 1500 and m["lease ends"].at == round(NOW + 3300)
    assert m["last verified"].at == NOW - 30 and m["last verified"].current
    probe = facts(v.probes[0])
    assert probe["this host?"].value.startswith("yes: the nonce") and probe["this host?"].level == "good"
    assert v.service.level == "good" and facts(v.service)["state"].value == "running"


def test_a_fact_from_before_this_run_is_unverified_with_why():
    v = build(doc(started=NOW - 5), PUBLICIP, [], NOW)  # restarted after every fact was written
    ip = facts(v.addresses[0])["address"]
    assert not ip.current and "earlier run" in ip.why and ip.level == "warn"
    assert v.addresses[0].level == "warn"
    assert not facts(v.mappings[0])["last verified"].current


@pytest.mark.parametrize("state, words", [
    ("stopped", "not running (stopped cleanly)"), ("dead", "crash or kill"), ("hung", "heartbeat is stale"),
    ("never", "never run")])
def test_nothing_is_current_while_the_service_is_not_running(state, words):
    v = build(doc(state=state), PUBLICIP, [], NOW)
    assert v.service.level == "bad" and words in facts(v.service)["state"].value
    for card in v.addresses + v.mappings + v.ddns + v.probes:
        assert not any(f.current and f.at is not None for f in card.facts), card
    assert words in facts(v.addresses[0])["address"].why


@pytest.mark.parametrize("verdict, words", [("cgnat", "CGNAT"), ("double-nat", "double NAT"),
                                            ("unknown", "unknown")])
def test_verdict_words(verdict, words):
    d = doc(public_ip={"public_ipv4": None, "verdict": verdict, "problem": "no public address",
                       "checked_at": NOW - 1})
    ip = facts(build(d, {}, [], NOW).addresses[0])
    assert ip["verdict"].value == words and ip["address"].value == "none" and ip["address"].level == "bad"
    assert ip["address"].why == "no public address" and ip["sources agreed"].value == "none"


def test_ipv6_row_only_when_asked_and_never_checked_says_so():
    v6 = dict(PUBLICIP, public_ipv6="2600:1::5", sources=[*PUBLICIP["sources"],
              {"source": "router", "family": 6, "address": "2600:1::5", "accepted": True}])
    assert [c.title for c in build(doc(), v6, [], NOW).addresses] == ["Public IPv4", "Public IPv6"]
    assert [c.title for c in build(doc(), PUBLICIP, [], NOW).addresses] == ["Public IPv4"]
    never = build(doc(public_ip={}), {}, [], NOW).addresses
    assert never[0].facts[0].value == "none" and not never[0].facts[0].current


@pytest.mark.parametrize("identity, start, level", [
    ("nonce", "yes", "good"), ("greeting", "yes", "good"), ("mismatch", "no", "bad"),
    ("other-host", "no", "bad"), ("unproven", "not proven", "warn")])
def test_probe_identity(identity, start, level):
    d = doc()
    d["probes"]["results"][0]["identity"] = identity
    f = facts(build(d, PUBLICIP, [], NOW).probes[0])["this host?"]
    assert f.value.startswith(start) and f.level == level


KNOT = "10.0.0.53:5353"


@pytest.mark.parametrize("kept, verify, value, current, level, why", [
    (None, True, "", False, "warn", "not asked yet"),
    (None, False, "", False, "warn", "verify = false"),
    ({"addresses": {"ipv4": ["11.0.0.2"]}, "server": KNOT, "at": NOW - 3, "problem": None}, True,
     "11.0.0.2", True, "good", f"from {KNOT}"),
    ({"addresses": {"ipv4": ["11.0.0.9"]}, "server": KNOT, "at": NOW - 3, "problem": None}, True,
     "11.0.0.9", True, "bad", "differs from what was published (11.0.0.2)"),
    ({"addresses": {"ipv4": ["11.0.0.2"]}, "server": KNOT, "at": STARTED - 60, "problem": None}, True,
     "11.0.0.2", False, "warn", "from an earlier run"),  # not asked by this run
    ({"addresses": {}, "server": KNOT, "at": NOW - 3, "problem": "no answer from 10.0.0.53 (Timeout)"}, True,
     "", False, "warn", "could not be asked: no answer from 10.0.0.53 (Timeout)"),
    ({"addresses": {"ipv4": []}, "server": KNOT, "at": NOW - 3, "problem": None}, True,
     "no record", True, "bad", "differs"),
])
def test_ddns_authoritative_answer(kept, verify, value, current, level, why):
    d = doc()
    d["ddns"][0].update(verify=verify, authoritative={"a.example": {**kept, "published": {"ipv4": "11.0.0.2"}}}
                        if kept else {})
    f = facts(build(d, PUBLICIP, [], NOW).ddns[0])
    assert f["published"].value == "11.0.0.2" and f["published"].at == NOW - 20
    auth = f["authoritative answer"]
    assert (auth.value, auth.current, auth.level) == (value, current, level) and why in auth.why, auth
    assert auth.at == (kept or {}).get("at")


def test_ddns_authoritative_answer_per_name():
    d = doc()
    d["ddns"][0].update(hostnames=["a.example", "b.example"], authoritative={
        "b.example": {"addresses": {"ipv4": ["11.0.0.2"]}, "server": KNOT, "at": NOW - 3, "problem": None,
                      "published": {"ipv4": "11.0.0.2"}}})
    f = facts(build(d, PUBLICIP, [], NOW).ddns[0])
    assert not f["authoritative answer (a.example)"].current
    assert f["authoritative answer (b.example)"].value == "11.0.0.2" and f["authoritative answer (b.example)"].current


def test_stopped_ddns_entry_shows_the_fix():
    d = doc()
    d["ddns"][0].update(stopped=True, outcome="badauth", message="bad password", hint="fix [[ddns]] 'home'")
    card = build(d, PUBLICIP, [], NOW).ddns[0]
    assert card.level == "bad" and facts(card)["stopped"].value == "fix [[ddns]] 'home'"
    assert card.action == "home"


def test_history_newest_first_and_capped_on_the_page():
    entries = [{"at": NOW - 100 + i, "event": "public-ip-changed", "subject": "public-ip", "message": str(i)}
               for i in range(150)]
    v = build(doc(), PUBLICIP, entries, NOW)
    assert v.history[0]["message"] == "149" and len(v.history) == 100 and v.history_total == 150
    assert "50 older entries" in render.main_part(v, "t")


def test_render_escapes_and_shows_ages_and_unverified():
    d = doc(started=NOW - 5)
    d["ddns"][0]["message"] = "<script>alert(1)</script>"
    html = render.page(build(d, PUBLICIP, [], NOW), "csrf-token", login=False)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<time datetime="' in html and "20s ago" in html and "in 25m" in html
    assert "<strong>unverified</strong> — from an earlier run" in html
    assert html.count('name="csrf" value="csrf-token"') == 2  # check now + update home now
    assert "Log out" not in html


def test_unreadable_state_is_shown_as_an_error_not_as_facts():
    v = unreadable("cannot read /var/lib/natlink: permission denied", NOW)
    html = render.main_part(v, "t")
    assert 'role="alert"' in html and "permission denied" in html and "Nothing is shown as current" in html
    assert "All links work" not in html and not v.ok


def test_when_words():
    assert render.when(NOW - 0.2, NOW) == "just now"
    assert render.when(NOW - 75, NOW) == "1m15s ago"
    assert render.when(NOW + 3600, NOW) == "in 1h"


def test_ipv6_pinholes_are_listed_with_their_lease():
    holes = {"pinholes": {"web": {"name": "web", "protocol": "tcp", "port": 8080, "address": "2600:1:1::201",
                                  "via": "upnp", "lease": 3600, "at": NOW - 60}}}
    card = build(doc(), PUBLICIP, [], NOW, holes).mappings[-1]
    f = facts(card)
    assert card.title == "Pinhole web (IPv6)" and f["pinhole"].value == "TCP [2600:1:1::201]:8080"
    assert f["on the router"].current and f["lease ends"].at == NOW + 3540
    stale = build(doc(started=NOW - 5), PUBLICIP, [], NOW, holes).mappings[-1]
    assert stale.level == "warn" and not facts(stale)["on the router"].current
