"""Table tests for the pure DDNS policy: should we contact the provider, what do we remember, how long we wait."""

from __future__ import annotations

import pytest

from natlink.ddns.base import ProviderResult
from natlink.ddns.policy import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    EntryState,
    after_attempt,
    backoff_delay,
    config_hash,
    decide,
)

NOW = 1_000_000.0
H = "hash-a"
PUB = EntryState(published={"ipv4": "11.0.0.2"}, last_success=NOW - 3600, last_attempt=NOW - 3600, config_hash=H,
                 last_outcome="good")

DECIDE = [
    # (name, state, want, hash, keepalive, force, expected action, text in reason)
    ("first run", EntryState(), {4: "11.0.0.2"}, H, 0, False, "update", "first update"),
    ("unchanged", PUB, {4: "11.0.0.2"}, H, 0, False, "skip", "unchanged"),
    ("changed", PUB, {4: "11.0.0.3"}, H, 0, False, "update", "11.0.0.2 -> 11.0.0.3"),
    ("detection failed", PUB, {4: None}, H, 0, False, "no-ip", "left as they are"),
    ("detection failed, forced", PUB, {4: None}, H, 0, True, "no-ip", "left as they are"),
    ("v6 unknown, v4 same", PUB, {4: "11.0.0.2", 6: None}, H, 0, False, "skip", "unchanged"),
    ("v6 new", PUB, {4: "11.0.0.2", 6: "2001:470::1"}, H, 0, False, "update", "first update (2001:470::1)"),
    ("config changed", PUB, {4: "11.0.0.2"}, "hash-b", 0, False, "update", "config changed"),
    ("forced", PUB, {4: "11.0.0.2"}, H, 0, True, "update", "forced"),
    ("keep-alive due", PUB, {4: "11.0.0.2"}, H, 3600, False, "update", "keep-alive (unchanged for 1h or more)"),
    ("keep-alive not due", PUB, {4: "11.0.0.2"}, H, 7200, False, "skip", "unchanged"),
    ("fatal blocks", EntryState(fatal=True, last_outcome="badauth", last_message="refused", config_hash=H),
     {4: "11.0.0.3"}, H, 0, False, "blocked", "badauth"),
    ("fatal, config fixed", EntryState(fatal=True, last_outcome="badauth", config_hash=H),
     {4: "11.0.0.3"}, "hash-b", 0, False, "update", "config changed"),
    ("fatal, forced", EntryState(fatal=True, last_outcome="abuse", config_hash=H),
     {4: "11.0.0.3"}, H, 0, True, "update", "forced"),
    ("backing off", EntryState(next_attempt=NOW + 100, last_outcome="911", config_hash=H),
     {4: "11.0.0.3"}, H, 0, False, "wait", "next try in 100s"),
    ("backoff over", EntryState(next_attempt=NOW - 1, last_outcome="911", config_hash=H),
     {4: "11.0.0.3"}, H, 0, False, "update", "first update"),
    ("backing off, forced", EntryState(next_attempt=NOW + 100, config_hash=H), {4: "11.0.0.3"}, H, 0, True,
     "update", "forced"),
]


@pytest.mark.parametrize("name, state, want, cfg_hash, keepalive, force, action, reason", DECIDE,
                         ids=[row[0] for row in DECIDE])
def test_decide(name: str, state: EntryState, want: dict[int, str | None], cfg_hash: str, keepalive: int,
                force: bool, action: str, reason: str) -> None:
    decision = decide(state, want, cfg_hash, NOW, keepalive, force)
    assert decision.action == action
    assert reason in decision.reason
    if action == "update":
        assert decision.addresses == {f: ip for f, ip in want.items() if ip}


@pytest.mark.parametrize("failures, fraction, retry_after, expected", [
    (1, 0.0, None, BACKOFF_BASE / 2),
    (1, 0.999999, None, BACKOFF_BASE * 0.9999995),
    (2, 0.0, None, BACKOFF_BASE),
    (3, 0.5, None, BACKOFF_BASE * 4 * 0.75),
    (30, 0.0, None, BACKOFF_CAP / 2),  # capped, never overflows
    (30, 0.999, None, BACKOFF_CAP * 0.9995),
    (1, 0.0, 600.0, 600.0),  # the provider's Retry-After wins when longer
    (1, 0.0, 10 * 86400.0, 86400.0),  # ... but not beyond a day
])
def test_backoff(failures: int, fraction: float, retry_after: float | None, expected: float) -> None:
    assert backoff_delay(failures, fraction, retry_after) == pytest.approx(expected)


def test_backoff_is_monotonic_and_capped() -> None:
    delays = [backoff_delay(n, 0.5) for n in range(1, 20)]
    assert delays == sorted(delays) and max(delays) <= BACKOFF_CAP


AFTER = [
    ("success", ProviderResult("good", "success", "ok"), {"ipv4": "11.0.0.3"}, False, 0, None),
    ("fatal", ProviderResult("badauth", "fatal", "no"), {"ipv4": "11.0.0.2"}, True, 1, None),
    ("transient", ProviderResult("911", "transient", "later"), {"ipv4": "11.0.0.2"}, False, 1,
     NOW + BACKOFF_BASE / 2),
]


@pytest.mark.parametrize("name, result, published, fatal, failures, next_attempt", AFTER, ids=[r[0] for r in AFTER])
def test_after_attempt(name: str, result: ProviderResult, published: dict[str, str], fatal: bool, failures: int,
                       next_attempt: float | None) -> None:
    state = after_attempt(PUB, result, {4: "11.0.0.3"}, "hash-b", NOW, 0.0)
    assert state.published == published
    assert (state.fatal, state.failures, state.next_attempt) == (fatal, failures, next_attempt)
    assert (state.last_attempt, state.last_outcome, state.config_hash) == (NOW, result.outcome, "hash-b")
    assert state.last_success == (NOW if result.kind == "success" else PUB.last_success)


def test_success_clears_failures() -> None:
    failing = EntryState(failures=4, next_attempt=NOW + 10, last_outcome="911")
    state = after_attempt(failing, ProviderResult("good", "success", "ok"), {4: "11.0.0.3"}, H, NOW, 0.3)
    assert (state.failures, state.next_attempt, state.fatal) == (0, None, False)


def test_state_round_trip_and_corrupt_input() -> None:
    assert EntryState.from_json(PUB.to_json()) == PUB
    assert EntryState.from_json({"published": "garbage", "unknown": 1}) == EntryState()
    assert EntryState.from_json(None) == EntryState()


def test_config_hash_is_stable_and_sensitive() -> None:
    a = {"provider": "noip", "hostnames": ["a"], "options": {"username": "x"}}
    assert config_hash(a) == config_hash(dict(reversed(list(a.items()))))
    assert config_hash(a) != config_hash({**a, "hostnames": ["b"]})
