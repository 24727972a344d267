"""Table tests for the pure probe decisions: observation -> verdict + diagnosis sentence."""

from __future__ import annotations

import pytest

from natlink.probe.verdicts import (
    Inside,
    Observation,
    TargetVerdict,
    Verdict,
    cross_check,
    decide,
    exit_code,
    result_from,
)

BASE = dict(name="rdp", via="reflector", protocol="tcp", family="ipv4", external_port=3390,
            public_address="11.0.0.2", internal="10.0.1.201:3389")


def obs(**kw) -> Observation:
    return Observation(**{**BASE, **kw})


CASES = [
    # (case, observation fields, verdict, identity, words the sentence must contain)
    ("nonce read back", dict(inside=Inside.SELF, outcome="open", nonce_seen=True), Verdict.VERIFIED, "nonce",
     ["natlink's own listener on 10.0.1.201:3389", "start the service"]),
    ("listener hit, echoip never reads", dict(via="echoip", inside=Inside.SELF, outcome="open", listener_hits=1),
     Verdict.VERIFIED, "listener", ["accepted the connect from outside"]),
    ("natlink listened but another host answered", dict(inside=Inside.SELF, outcome="open"), Verdict.OPEN,
     "other-host", ["not this host", "stale mapping"]),
    ("greeting matches", dict(inside=Inside.SERVICE, outcome="open", greeting_inside=b"SSH-2.0-x\r\n",
                              greeting_outside=b"SSH-2.0-x\r\n"), Verdict.VERIFIED, "greeting", ["matches"]),
    ("greeting differs", dict(inside=Inside.SERVICE, outcome="open", greeting_inside=b"SSH-2.0-new\r\n",
                              greeting_outside=b"SSH-2.0-old\r\n"), Verdict.OPEN, "mismatch",
     ["another machine", "'SSH-2.0-old' vs 'SSH-2.0-new'"]),
    ("silent service", dict(inside=Inside.SERVICE, outcome="open"), Verdict.OPEN, "unproven", ["does not speak first"]),
    ("router forwards, nothing listens", dict(inside=Inside.NOTHING, outcome="refused", router_forwards=True),
     Verdict.REFUSED, "unproven",
     ["refused: the router forwards 3390 but nothing listens on 10.0.1.201:3389 — start the service"]),
    ("nothing listens, table unknown", dict(inside=Inside.NOTHING, outcome="refused"), Verdict.REFUSED, "unproven",
     ["nothing listens on 10.0.1.201:3389", "start the service"]),
    ("nothing listens, no mapping", dict(inside=Inside.NOTHING, outcome="refused", router_forwards=False),
     Verdict.REFUSED, "unproven", ["no mapping for 3390", "natlink map"]),
    ("listening but no mapping", dict(inside=Inside.SELF, outcome="refused"), Verdict.REFUSED, "unproven",
     ["does not forward 3390 here", "natlink map"]),
    ("bare target, no mapping in table", dict(internal=None, outcome="refused", router_forwards=False, external_port=80),
     Verdict.REFUSED, "unproven", ["no mapping for 80"]),
    ("stale forward to another machine", dict(inside=Inside.SELF, outcome="refused", router_forwards=False,
                                              router_forwards_to="10.0.1.50:3389"), Verdict.REFUSED, "unproven",
     ["forwards 3390 to 10.0.1.50:3389, not to 10.0.1.201:3389", "stale"]),
    ("timeout alone", dict(inside=Inside.SELF, outcome="timeout"), Verdict.TIMEOUT, "unproven",
     ["no answer", "ISP block"]),
    ("timeout behind double NAT", dict(inside=Inside.SELF, outcome="timeout", double_nat="another router is in front."),
     Verdict.TIMEOUT, "unproven", ["another router is in front"]),
    ("udp silence", dict(protocol="udp", outcome="timeout"), Verdict.TIMEOUT, "unproven",
     ["cannot tell filtered from closed"]),
    ("udp nonce read back", dict(protocol="udp", inside=Inside.SELF, outcome="open", nonce_seen=True),
     Verdict.VERIFIED, "nonce", ["natlink's own listener"]),
    ("udp service answered", dict(protocol="udp", inside=Inside.SERVICE, outcome="open"), Verdict.OPEN, "unproven",
     ["UDP datagram from outside", "was answered"]),
    ("udp port unreachable, no mapping", dict(protocol="udp", inside=Inside.SELF, outcome="refused",
                                              router_forwards=False), Verdict.REFUSED, "unproven",
     ["ICMP port-unreachable", "natlink map"]),
    ("icmp unreachable", dict(outcome="unreachable", error="No route to host"), Verdict.UNREACHABLE, "unproven",
     ["No route to host"]),
    ("checker failed", dict(outcome="error", error="the reflector answered HTTP 403"), Verdict.CHECKER_ERROR,
     "unproven", ["HTTP 403", "says nothing about 11.0.0.2:3390"]),
    ("echoip closed", dict(via="echoip", outcome="closed", inside=Inside.NOTHING), Verdict.UNREACHABLE, "unproven",
     ["does not say whether", "start the service"]),
    ("echoip closed yet our listener saw it", dict(via="echoip", outcome="closed", inside=Inside.SELF, listener_hits=1),
     Verdict.CHECKER_ERROR, "unproven", ["unreliable"]),
    ("cgnat wins over any dial-back", dict(outcome="not-tried", wan_problem="your router's WAN address 100.64.0.2 is "
                                           "carrier-grade NAT"), Verdict.CGNAT, "unproven", ["cgnat: ", "100.64.0.2"]),
    ("cgnat does not apply to ipv6", dict(family="ipv6", outcome="open", wan_problem="CGN"), Verdict.OPEN, "unproven",
     ["open:"]),
    ("hairpin works", dict(via="hairpin", inside=Inside.SELF, outcome="open", nonce_seen=True), Verdict.VERIFIED,
     "nonce", ["hairpin", "not proof of reachability from outside"]),
    ("hairpin not supported", dict(via="hairpin", outcome="refused"), Verdict.REFUSED, "unproven",
     ["no hairpin NAT", "not proof of reachability from outside"]),
    ("hairpin ignores cgnat", dict(via="hairpin", outcome="timeout", wan_problem="CGN"), Verdict.TIMEOUT, "unproven",
     ["hairpin"]),
    ("name mismatch is noted", dict(inside=Inside.SERVICE, outcome="open", name_mismatch="rdp.example resolves to "
                                    "1.2.3.4 but the outside sees you as 11.0.0.2"), Verdict.OPEN, "unproven",
     ["resolves to 1.2.3.4"]),
]


@pytest.mark.parametrize("case,fields,verdict,identity,words", CASES, ids=[c[0] for c in CASES])
def test_decide(case, fields, verdict, identity, words):
    d = decide(obs(**fields))
    assert d.verdict is verdict
    assert d.identity == identity
    assert d.detail.startswith(verdict.value)
    for w in words:
        assert w in d.detail, (w, d.detail)


def _r(name, port, verdict, family="ipv4", via="reflector", protocol="tcp") -> TargetVerdict:
    return TargetVerdict(name=name, target=f"11.0.0.2:{port}", family=family, verdict=verdict, detail=f"{verdict.value}: x",
                         elapsed=0.1, via=via, protocol=protocol, external_port=port)


CROSS = [
    ("blocked port next to a working one", [_r("web", 80, Verdict.TIMEOUT), _r("rdp", 3390, Verdict.OPEN)],
     "timeout on 80 but 3390 works: your ISP blocks inbound port 80"),
    ("no working sibling: unchanged", [_r("web", 80, Verdict.TIMEOUT), _r("rdp", 3390, Verdict.REFUSED)], "timeout: x"),
    ("other family does not count", [_r("web", 80, Verdict.TIMEOUT), _r("rdp", 3390, Verdict.OPEN, family="ipv6")],
     "timeout: x"),
    ("hairpin does not count", [_r("web", 80, Verdict.TIMEOUT), _r("hp", 3390, Verdict.OPEN, via="hairpin")],
     "timeout: x"),
    ("udp silence is not an ISP block", [_r("dns", 5353, Verdict.TIMEOUT, protocol="udp"), _r("rdp", 3390, Verdict.OPEN)],
     "timeout: x"),
]


@pytest.mark.parametrize("case,results,first_detail", CROSS, ids=[c[0] for c in CROSS])
def test_cross_check(case, results, first_detail):
    out = cross_check(results)
    assert out[0].detail.startswith(first_detail)
    assert [r.verdict for r in out] == [r.verdict for r in results]


@pytest.mark.parametrize("verdicts,code", [
    ([Verdict.VERIFIED, Verdict.OPEN], 0), ([Verdict.OPEN, Verdict.TIMEOUT], 1), ([Verdict.CHECKER_ERROR], 1),
    ([Verdict.CGNAT], 1), ([], 1)])
def test_exit_code(verdicts, code):
    assert exit_code([_r("x", 1000 + i, v) for i, v in enumerate(verdicts)]) == code


def test_result_json_shape():
    r = result_from(obs(inside=Inside.SELF, outcome="open", nonce_seen=True), 0.123456)
    doc = r.to_json()
    assert doc["verdict"] == "verified" and doc["ok"] is True and doc["family"] == "ipv4"
    assert doc["target"] == "11.0.0.2:3390" and doc["elapsed"] == 0.1235 and doc["identity"] == "nonce"
    assert set(doc) >= {"name", "target", "family", "verdict", "detail", "elapsed"}


def test_external_without_public_address_and_ipv6():
    assert obs(public_address=None).external == "port 3390"
    assert obs(public_address="2001:db8::1").external == "[2001:db8::1]:3390"
