"""Per-name bookkeeping of a [[ddns]] entry (pure): every hostname has its own recap, so a fatal answer for one
name stops that name only, a name that was updated is recorded as updated, and each family's answer is kept.

The state document "ddns-<entry>" keeps the entry-level recap at the top (what `natlink status` shows) and
one recap per name under "hosts". A document from before per-name recaps has no "hosts": its recap then
applies to every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from natlink.ddns.base import ProviderResult, combine
from natlink.ddns.policy import FAMILY_KEYS, EntryState, UpdateDecision
from natlink.ddns.registry import SEPARATE

ACTION_RANK = {"blocked": 0, "error": 1, "wait": 2, "no-ip": 3, "skip": 4}  # which one sums up untouched names


@dataclass(frozen=True)
class HostOutcome:
    """What happened to one name this round (for output; the recap itself is an EntryState)."""

    hostname: str
    action: str  # as EntryResult.action
    outcome: str
    kind: str  # "success" | "fatal" | "transient" | "none"
    message: str
    answers: dict[str, str] = field(default_factory=dict)  # {"ipv4": "good", "ipv6": "nochg"}: per family

    def to_json(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "action": self.action, "outcome": self.outcome, "kind": self.kind,
                "message": self.message, "answers": self.answers}


def load(doc: Any, hostnames: tuple[str, ...]) -> dict[str, EntryState]:
    hosts = doc.get("hosts") if isinstance(doc, dict) else None
    if not isinstance(hosts, dict):
        legacy = EntryState.from_json(doc)  # older document: its recap was about all names at once
        return {h: legacy for h in hostnames}
    return {h: EntryState.from_json(hosts.get(h)) for h in hostnames}


def to_send(rule: str, decision: UpdateDecision, state: EntryState, cfg_hash: str, force: bool) -> dict[int, str]:
    """The addresses one name's update carries. Where each family is its own request (SEPARATE), an
    unchanged family is not sent again: that would only provoke a `nochg`. Elsewhere both go together,
    because a request with one family may delete the other family's record at some providers."""
    if rule != SEPARATE or force or state.config_hash != cfg_hash:
        return dict(decision.addresses)
    changed = {f: ip for f, ip in decision.addresses.items() if state.published.get(FAMILY_KEYS[f]) != ip}
    return changed or dict(decision.addresses)  # keep-alive / repair: what the decision asks for


def groups(sends: dict[str, dict[int, str]]) -> list[tuple[dict[int, str], list[str]]]:
    """Names that send the same addresses share one provider call (in the entry's order)."""
    out: list[tuple[dict[int, str], list[str]]] = []
    for hostname, addresses in sends.items():
        for sent, names in out:
            if sent == addresses:
                names.append(hostname)
                break
        else:
            out.append((addresses, [hostname]))
    return out


def split(result: ProviderResult, hostnames: list[str]) -> dict[str, ProviderResult]:
    """Each name's own answer; a name without one (an answer about the whole request, or a name not reached
    after an entry-wide failure) gets the combined result."""
    leaves = result.leaves()
    whole = replace(result, parts=())
    out = {}
    for hostname in hostnames:
        mine = [leaf for leaf in leaves if leaf.hostname == hostname]
        out[hostname] = combine(mine) if mine else whole
    return out


def answers(result: ProviderResult, sent: dict[int, str]) -> dict[str, str]:
    """The provider's answer per family sent (an answer without a family covers every family it was sent)."""
    out = {}
    for family in sorted(sent):
        mine = [leaf for leaf in result.leaves() if leaf.family in (family, None)]
        out[FAMILY_KEYS[family]] = combine(mine).outcome if mine else result.outcome
    return out


def published_families(result: ProviderResult, sent: dict[int, str]) -> dict[str, str]:
    """What the provider took even when the whole did not succeed (HE.net: A good, AAAA failed)."""
    return {FAMILY_KEYS[leaf.family]: sent[leaf.family] for leaf in result.leaves()
            if leaf.ok and leaf.family in sent}


def after(state: EntryState, new: EntryState, result: ProviderResult, sent: dict[int, str]) -> EntryState:
    """`new` (policy.after_attempt) plus the families that did succeed inside a failed result."""
    if result.ok:
        return new
    took = published_families(result, sent)
    return replace(new, published={**new.published, **took}) if took else new


def summary(states: dict[str, EntryState]) -> EntryState:
    """The entry-level recap: stopped when any name is stopped, the worst name's outcome, the earliest retry."""
    values = list(states.values())
    if len(values) == 1:
        return values[0]
    attempted = [s for s in values if s.last_attempt is not None]

    def badness(s: EntryState) -> tuple[int, float]:
        return (2 if s.fatal else 1 if s.failures else 0, s.last_attempt or 0.0)

    worst_state = max(attempted or values, key=badness)
    published = next((s.published for s in values if s.published), {})
    successes = [s.last_success for s in values if s.last_success is not None]
    retries = [s.next_attempt for s in values if s.next_attempt is not None]
    return replace(worst_state, published=dict(published), last_success=max(successes) if successes else None,
                   next_attempt=min(retries) if retries else None, fatal=any(s.fatal for s in values),
                   failures=max(s.failures for s in values),
                   last_attempt=max((s.last_attempt for s in attempted), default=None))


def notes(doc: Any) -> dict[str, dict[str, Any]]:
    """Per-name notes kept beside the recap (the drift bookkeeping: "previous", "drift_repair")."""
    hosts = doc.get("hosts") if isinstance(doc, dict) else None
    if not isinstance(hosts, dict):
        return {}
    return {h: {k: v for k, v in d.items() if k in NOTE_KEYS} for h, d in hosts.items() if isinstance(d, dict)}


NOTE_KEYS = ("previous", "drift_repair", "authoritative")  # authoritative: see authoritative.py


def document(states: dict[str, EntryState], extra: dict[str, Any],
             host_notes: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = summary(states).to_json()
    doc.update(extra)
    doc["hosts"] = {h: {**s.to_json(), **(host_notes or {}).get(h, {})} for h, s in states.items()}
    return doc


def summed_action(outcomes: list[HostOutcome]) -> str:
    """One action for an entry none of whose names was sent: the most pressing one."""
    return min((o.action for o in outcomes), key=lambda a: ACTION_RANK.get(a, 9))
