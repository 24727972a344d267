"""Pure per-name bookkeeping (natlink/ddns/hosts.py) and the provider cooldown (policy.cooldown)."""

from __future__ import annotations

import pytest

from natlink.ddns import hosts
from natlink.ddns.base import combine, fatal, success, transient
from natlink.ddns.policy import EntryState, UpdateDecision, cooldown
from natlink.ddns.registry import SEPARATE, TOGETHER

V4, V6 = "11.0.0.2", "2001:db8::2"
PUB = EntryState(published={"ipv4": V4, "ipv6": "2001:db8::1"}, last_success=100.0, last_attempt=100.0,
                 config_hash="h")
BOTH = UpdateDecision("update", "2001:db8::1 -> 2001:db8::2", {4: V4, 6: V6})


@pytest.mark.parametrize("rule, state, force, cfg_hash, expected", [
    (SEPARATE, PUB, False, "h", {6: V6}),  # only the family that changed: no nochg for the A record
    (TOGETHER, PUB, False, "h", {4: V4, 6: V6}),  # one request carries both: A goes along, never deleted
    (SEPARATE, PUB, True, "h", {4: V4, 6: V6}),  # --force sends everything
    (SEPARATE, PUB, False, "other", {4: V4, 6: V6}),  # a config change too
    (SEPARATE, EntryState(published={"ipv4": V4, "ipv6": V6}, config_hash="h"), False, "h", {4: V4, 6: V6}),
])
def test_to_send(rule: str, state: EntryState, force: bool, cfg_hash: str, expected: dict[int, str]) -> None:
    assert hosts.to_send(rule, BOTH, state, cfg_hash, force) == expected


def test_groups_keep_order_and_share_calls() -> None:
    assert hosts.groups({"a": {4: V4}, "b": {4: V4, 6: V6}, "c": {4: V4}}) == [
        ({4: V4}, ["a", "c"]), ({4: V4, 6: V6}, ["b"])]


def test_split_answers_and_partial_families() -> None:
    a4 = success("good", "a A").about("a", 4)
    a6 = transient("911", "a AAAA").about("a", 6)
    combined = combine([combine([a4, a6]).about("a"), fatal("nohost", "b", per_name=True).about("b")])
    per = hosts.split(combined, ["a", "b", "c"])
    assert (per["a"].outcome, per["b"].outcome, per["c"].outcome) == ("911", "nohost", "nohost")
    assert hosts.answers(per["a"], {4: V4, 6: V6}) == {"ipv4": "good", "ipv6": "911"}
    assert hosts.published_families(per["a"], {4: V4, 6: V6}) == {"ipv4": V4}
    whole = success("good", "both")  # an answer about the whole request covers every family sent
    assert hosts.answers(whole, {4: V4, 6: V6}) == {"ipv4": "good", "ipv6": "good"}


def test_summary_and_legacy_documents() -> None:
    ok = EntryState(published={"ipv4": V4}, last_success=10.0, last_attempt=10.0, last_outcome="good")
    stopped = EntryState(last_attempt=12.0, last_outcome="nohost", fatal=True)
    s = hosts.summary({"a": ok, "b": stopped})
    assert (s.fatal, s.last_outcome, s.published, s.last_success, s.last_attempt) == (
        True, "nohost", {"ipv4": V4}, 10.0, 12.0)
    legacy = {"published": {"ipv4": V4}, "last_outcome": "good"}  # written before per-name recaps
    assert hosts.load(legacy, ("a", "b")) == {"a": EntryState(published={"ipv4": V4}, last_outcome="good"),
                                               "b": EntryState(published={"ipv4": V4}, last_outcome="good")}
    doc = hosts.document({"a": ok}, {"provider": "he"}, {"a": {"drift_repair": 5.0}})
    assert doc["hosts"]["a"]["drift_repair"] == 5.0 and hosts.notes(doc) == {"a": {"drift_repair": 5.0}}
    assert hosts.load(doc, ("a", "new")) == {"a": ok, "new": EntryState()}


@pytest.mark.parametrize("decision, last_attempt, now, interval, action", [
    (UpdateDecision("update", "x", {4: V4}), 1000.0, 1300.0, 600, "wait"),
    (UpdateDecision("update", "x", {4: V4}), 1000.0, 1600.0, 600, "update"),
    (UpdateDecision("update", "x", {4: V4}), None, 1300.0, 600, "update"),
    (UpdateDecision("update", "x", {4: V4}), 1000.0, 1001.0, 0, "update"),
    (UpdateDecision("skip", "unchanged"), 1000.0, 1300.0, 600, "skip"),
])
def test_cooldown(decision: UpdateDecision, last_attempt: float | None, now: float, interval: int, action: str) -> None:
    result = cooldown(decision, EntryState(last_attempt=last_attempt), now, interval)
    assert result.action == action
    if action == "wait":
        assert "10m" in result.reason and "301s" in result.reason


@pytest.mark.parametrize("provider, hostname, name", [
    ("duckdns", "myhome", "myhome.duckdns.org"), ("duckdns", "myhome.duckdns.org", "myhome.duckdns.org"),
    ("dyndns2", "a.example.net.", "a.example.net"),
])
def test_live_names(provider: str, hostname: str, name: str) -> None:
    from natlink.ddns import live, registry
    assert live.fqdn(hostname, registry.PROVIDERS[provider]) == name


@pytest.mark.parametrize("text, server", [
    ("11.0.0.1", ("11.0.0.1", 53)), ("11.0.0.1:5353", ("11.0.0.1", 5353)), ("ns1.example.net", ("ns1.example.net", 53)),
    ("[2001:db8::1]:54", ("2001:db8::1", 54)), ("2001:db8::1", ("2001:db8::1", 53)),
])
def test_parse_server(text: str, server: tuple[str, int]) -> None:
    from natlink.ddns import live
    assert live.parse_server(text) == server
