"""One DDNS round: for every [[ddns]] entry, decide (policy), maybe call its provider, remember (state).

    from natlink.ddns.updater import update_all
    results = update_all(cfg, store, report, force=False, names=None)

A failed detection (report without an address) never touches a record; an unchanged address costs zero
provider requests; fatal answers stop the entry until its config or a secret's value changes, or --force.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from natlink.ddns import authoritative, hosts, registry
from natlink.ddns.base import ProviderResult, combine, transient
from natlink.net.http import HttpClient
from natlink.ddns.policy import (FAMILY_KEYS, EntryState, UpdateDecision, after_attempt, config_hash, cooldown, decide,
                                 secret_hash, stopped_hint)
from natlink.ddns.registry import IPV4_ONLY, SEPARATE
from natlink.errors import UsageError
from natlink.secrets import Secret, SecretUnavailable, read_secret, redact

log = logging.getLogger(__name__)

PROVIDER_TIMEOUT = 10.0
DRIFT_GRACE = 900.0  # after an update, a live record still showing the old address is the provider catching up


@dataclass(frozen=True)
class EntryResult:
    name: str
    action: str  # "update" | "skip" | "wait" | "blocked" | "no-ip" | "error"
    outcome: str  # provider outcome ("good", "nochg", "badauth", "timeout", ...) or "unchanged", "backoff", ...
    fatal: bool  # this entry is stopped until its config changes or --force
    message: str
    provider: str = ""
    kind: str = "none"  # "success" | "fatal" | "transient" | "none" (no provider contact)
    addresses: dict[str, str] = field(default_factory=dict)
    next_attempt: float | None = None
    verify_problem: str | None = None
    requests: int = 0  # requests this entry sent to its provider in this round
    hosts: tuple[hosts.HostOutcome, ...] = ()  # each name's own outcome (and each family's answer)
    drift: tuple[str, ...] = ()  # live records found differing from what was published (repaired or reported)

    @property
    def failed(self) -> bool:
        return self.fatal or self.kind == "transient" or self.action in ("no-ip", "error")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "action": self.action, "outcome": self.outcome,
                "fatal": self.fatal, "kind": self.kind, "message": self.message, "addresses": self.addresses,
                "next_attempt": self.next_attempt, "verify_problem": self.verify_problem,
                "requests": self.requests, "hosts": [h.to_json() for h in self.hosts], "drift": list(self.drift)}


def select_entries(cfg: Any, names: list[str] | None) -> list[Any]:
    """The [[ddns]] entries named (all when names is empty/None); UsageError naming any unknown one."""
    entries = list(cfg.ddns)
    if names:
        known = {e.name for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(f"no [[ddns]] entry named {', '.join(unknown)}",
                             f"configured entries: {', '.join(sorted(known)) or 'none'}")
        entries = [e for e in entries if e.name in names]
    return entries


def update_all(cfg: Any, store: Any, report: Any, force: bool = False, names: list[str] | None = None, *,
               now: float | None = None, rng: random.Random | None = None,
               http_factory: Callable[[], HttpClient] | None = None, since: float | None = None) -> list[EntryResult]:
    """Run one round over the selected entries (all when names is empty/None). since: when the running service
    started (an authoritative answer kept from before it is re-saved, so the page sees this run asked it)."""
    entries = select_entries(cfg, names)
    rng = rng or random.Random()
    return [update_entry(e, store, report, force=force, now=time.time() if now is None else now, rng=rng,
                         http_factory=http_factory, since=since) for e in entries]


def update_entry(entry: Any, store: Any, report: Any, *, force: bool, now: float, rng: random.Random,
                 http_factory: Callable[[], HttpClient] | None = None, since: float | None = None) -> EntryResult:
    """One entry's round, name by name: each hostname has its own recap (hosts.py), so one name's fatal answer
    stops that name only."""
    key = f"ddns-{entry.name}"
    doc = store.load(key)
    states = hosts.load(doc, tuple(entry.hostnames))
    notes = hosts.notes(doc)
    want: dict[int, str | None] = {}
    if entry.ipv4:
        want[4] = report.public_ipv4
    if entry.ipv6:
        want[6] = report.public_ipv6
    spec = registry.PROVIDERS[entry.provider]
    rule = spec.family_rule(entry.options)
    if rule == IPV4_ONLY and entry.ipv4:
        want.pop(6, None)  # no AAAA at this provider: never "published", so it would be re-sent every round
    known = {f: ip for f, ip in sorted(want.items()) if ip}
    keepalive = entry.keepalive if entry.keepalive is not None else spec.keepalive
    cfg_hash = config_hash(entry.config_hash_items())
    secrets: dict[str, Secret] | None = None
    if not force and any(s.fatal and s.secret_salt for s in states.values()):
        # Stopped: a new value in the same password file is the fix the stop asked for. Read the secrets
        # (local, no request) to see whether it happened; unreadable ones leave the entry stopped.
        try:
            secrets = _read_secrets(entry)
        except SecretUnavailable:
            secrets = None
    kept = {h: notes.get(h, {}).get(authoritative.KEY) for h in entry.hostnames}
    decisions: dict[str, UpdateDecision] = {}
    outcomes: dict[str, hosts.HostOutcome] = {}
    drift_seen: list[str] = []
    for h, state in states.items():
        values_hash = (secret_hash(_values(secrets), state.secret_salt)
                       if secrets is not None and state.fatal and state.secret_salt else None)
        decision = decide(state, want, cfg_hash, now, keepalive, force, values_hash)
        note = ""
        if decision.action == "skip" and entry.verify:
            decision, note, drifted = _live_check(entry, spec, rule, h, state, notes.setdefault(h, {}), known, now,
                                                   since)
            drift_seen += drifted
        if not force:
            decision = cooldown(decision, state, now, spec.min_interval)
        decisions[h] = decision
        if decision.action != "update":
            outcomes[h] = _untouched(entry, h, decision, state, report, note)
    base = dict(name=entry.name, provider=entry.provider)
    due = [h for h in entry.hostnames if decisions[h].action == "update"]
    if not due:
        if any(notes.get(h, {}).get(authoritative.KEY) is not kept[h] for h in entry.hostnames):
            store.save(key, hosts.document(states, {"provider": entry.provider, "hostnames": list(entry.hostnames)},
                                           notes))  # a new authoritative answer (or its age refreshed)
        return _summed(entry, states, [outcomes[h] for h in entry.hostnames], drift_seen, **base)

    try:
        if secrets is None:
            secrets = _read_secrets(entry)
    except SecretUnavailable as exc:
        # Not persisted as fatal: nothing was sent, and the secret may appear (env, mounted file) by the next round.
        return EntryResult(action="error", outcome="secret", fatal=True, kind="fatal",
                           message=f"{exc.message} — {exc.hint}", addresses=hosts.summary(states).published, **base)
    http = http_factory() if http_factory else HttpClient(timeout=PROVIDER_TIMEOUT)
    try:
        provider = spec.make(entry, secrets, http=http, timeout=PROVIDER_TIMEOUT)
    except ValueError as exc:  # e.g. an unreadable TSIG key file: a config problem, nothing was sent
        return EntryResult(action="error", outcome="config", fatal=True, kind="fatal",
                           message=redact(str(exc), list(secrets.values())),
                           addresses=hosts.summary(states).published, **base)

    salt = next((s.secret_salt for s in states.values() if s.secret_salt), None) or os.urandom(16).hex()
    sealed = (secret_hash(_values(secrets), salt), salt)
    sends = {h: hosts.to_send(rule, decisions[h], states[h], cfg_hash, force) for h in due}
    results, verify_problems = [], []
    for sent, names in hosts.groups(sends):
        provider.hostnames = tuple(names)
        log.info("ddns %s: updating %s (%s)", entry.name, ", ".join(names), decisions[names[0]].reason)
        result = _call(provider, entry, sent, secrets)
        per = hosts.split(result, names)
        changed = [h for h in names if per[h].ok and per[h].outcome != "nochg"]
        if entry.verify and changed:
            provider.hostnames = tuple(changed)
            problem = _verify(provider, entry, sent, secrets)
            if problem:
                verify_problems.append(problem)
            for h in changed:  # what the authoritative server answers now, for the status page
                _record(notes.setdefault(h, {}), _ask(entry, spec, h, list(sent)), now, since)
        for h in names:
            new = after_attempt(states[h], per[h], sent, cfg_hash, now, rng.random(), secrets=sealed)
            new = hosts.after(states[h], new, per[h], sent)
            _remember(notes.setdefault(h, {}), states[h], new, decisions[h], now)
            states[h] = new
            outcomes[h] = hosts.HostOutcome(h, "update", per[h].outcome, per[h].kind, per[h].message,
                                            hosts.answers(per[h], sent))
        results.append(result)

    document = hosts.document(states, {"provider": entry.provider, "hostnames": list(entry.hostnames)}, notes)
    store.save(key, document)
    combined = combine([r for result in results for r in ([result] if not result.parts else result.parts)])
    _log(entry, combined)
    ordered = [outcomes[h] for h in entry.hostnames]
    summary = hosts.summary(states)
    message = _message(ordered, combined.message)
    if combined.kind == "fatal":  # the same hint as a blocked entry's (and status', the log's, the alert's)
        message = f"{message} — {stopped_hint(entry.name)}"
    return EntryResult(action="update", outcome=combined.outcome, fatal=any(s.fatal for s in states.values()),
                       kind=combined.kind, message=message,
                       addresses=dict(summary.published), next_attempt=summary.next_attempt,
                       verify_problem="; ".join(verify_problems) or None, requests=provider.requests_sent,
                       hosts=tuple(ordered), drift=tuple(drift_seen), **base)


def _call(provider: Any, entry: Any, sent: dict[int, str], secrets: dict[str, Secret]) -> ProviderResult:
    try:
        result = provider.update(sent)
    except Exception as exc:  # a bug in one provider must not stop the others; the class name is safe to show
        log.debug("ddns %s: provider crashed", entry.name, exc_info=True)
        result = transient("internal", f"internal error in the {entry.provider} provider "
                                       f"({exc.__class__.__name__}); run with -v and report it")
    return _redacted(result, list(secrets.values()))


def _redacted(result: ProviderResult, secrets: list[Secret]) -> ProviderResult:
    """Every message of the result and its parts with the entry's secrets blanked (belt and braces)."""
    return replace(result, message=redact(result.message, secrets),
                   parts=tuple(_redacted(p, secrets) for p in result.parts))


def _verify(provider: Any, entry: Any, sent: dict[int, str], secrets: dict[str, Secret]) -> str | None:
    try:
        problem = provider.verify(sent)
    except Exception as exc:
        problem = f"verification failed ({exc.__class__.__name__})"
    if problem:
        problem = redact(problem, list(secrets.values()))
        log.warning("ddns %s: updated, but %s", entry.name, problem)
    return problem


def _live_check(entry: Any, spec: Any, rule: str, hostname: str, state: EntryState, note: dict[str, Any],
                known: dict[int, str], now: float, since: float | None = None) -> tuple[UpdateDecision, str, list[str]]:
    """Before "unchanged": ask the zone's authoritative server. A record someone changed (or the provider
    lost) is repaired now; one the provider is still publishing after our update is given time; one that a
    repair did not fix is reported, not re-sent (the provider would only answer nochg again)."""
    from natlink.ddns import live  # dnspython loads only when a record is checked
    records = _ask(entry, spec, hostname, list(known))
    _record(note, records, now, since)
    drifted = live.drift(records, known)
    if not drifted:
        note.pop("drift_repair", None)
        problems = [r.problem for r in records if r.problem]
        if problems:
            return UpdateDecision("skip", "unchanged"), f"live record not checked: {problems[0]}", []
        return UpdateDecision("skip", "unchanged"), f"{records[0].server} answers the same", []
    sentence = "; ".join(drifted.values())
    previous = note.get("previous") or {}
    lagging = [r for r in records if r.family in drifted and r.addresses is not None
               and r.addresses <= {previous.get(FAMILY_KEYS[r.family])}]
    if lagging and state.last_success is not None and now - state.last_success < DRIFT_GRACE:
        return UpdateDecision("skip", "unchanged"), f"{sentence} (updated {int(now - state.last_success)}s ago: " \
                                                     "the provider may still be publishing it)", []
    repaired = note.get("drift_repair")
    if repaired is not None and state.last_success is not None and repaired >= state.last_success:
        return UpdateDecision("skip", "unchanged"), (f"{sentence}, although natlink repaired it; not sent again (the "
                                                     "provider would answer nochg): check the record at the provider, "
                                                     f"or natlink ddns --force {entry.name}"), [sentence]
    log.warning("ddns %s: drift: %s; repairing", entry.name, sentence)
    addresses = {f: known[f] for f in drifted} if rule == SEPARATE else dict(known)
    return UpdateDecision("update", f"drift: {sentence}", addresses, drift=True), "", [sentence]


def _ask(entry: Any, spec: Any, hostname: str, families: list[int]) -> list[Any]:
    """The name's live records, one per family, as its zone's authoritative server answers them."""
    from natlink.ddns import live  # dnspython loads only when a record is checked
    return live.lookup_all(live.fqdn(hostname, spec), families, **live.target(entry.options, spec))


def _record(note: dict[str, Any], records: list[Any], now: float, since: float | None) -> None:
    """Keep the authoritative answer in the name's note when it is worth a write (authoritative.changed)."""
    fresh = authoritative.answer(records, now)
    if authoritative.changed(note.get(authoritative.KEY), fresh, since):
        note[authoritative.KEY] = fresh


def _remember(note: dict[str, Any], old: EntryState, new: EntryState, decision: UpdateDecision, now: float) -> None:
    """The drift bookkeeping: what the name held before a change (a provider still publishing shows that),
    and when natlink last repaired a drift."""
    if new.published != old.published and old.published:
        note["previous"] = dict(old.published)
    if decision.drift and new.last_success == now:
        note["drift_repair"] = now


def _untouched(entry: Any, hostname: str, decision: UpdateDecision, state: EntryState, report: Any,
               note: str) -> hosts.HostOutcome:
    outcome = {"skip": "unchanged", "wait": "backoff", "blocked": state.last_outcome or "blocked",
               "no-ip": "no-ip"}[decision.action]
    message = decision.reason
    if decision.action == "skip" and state.published:
        message = f"{', '.join(state.published.values())} already published; nothing sent"
        if not entry.verify:
            message += " (live record not checked: verify = false)"
    if decision.action == "no-ip" and getattr(report, "problem", None):
        message = f"{message}: {report.problem}"
    if decision.action == "blocked":
        message = f"{message} — {stopped_hint(entry.name)}"
    if note:
        message = f"{message}; {note}"
    log.debug("ddns %s %s: %s (%s)", entry.name, hostname, decision.action, message)
    return hosts.HostOutcome(hostname, decision.action, outcome, "none", message)


def _summed(entry: Any, states: dict[str, EntryState], outcomes: list[hosts.HostOutcome], drift: list[str],
            **base: Any) -> EntryResult:
    """The result of an entry none of whose names was sent this round."""
    action = hosts.summed_action(outcomes)
    main = next(o for o in outcomes if o.action == action)
    summary = hosts.summary(states)
    return EntryResult(action=action, outcome=main.outcome, fatal=any(o.action == "blocked" for o in outcomes),
                       message=_message(outcomes, main.message), addresses=dict(summary.published),
                       next_attempt=summary.next_attempt, hosts=tuple(outcomes), drift=tuple(drift), **base)


def _message(outcomes: list[hosts.HostOutcome], single: str) -> str:
    if len(outcomes) == 1:
        return outcomes[0].message if outcomes[0].action != "update" else single
    return "; ".join(o.message if o.action == "update" and o.hostname in o.message else f"{o.hostname}: {o.message}"
                     for o in outcomes)


def _log(entry: Any, result: ProviderResult) -> None:
    if result.kind == "success":
        log.info("ddns %s: %s", entry.name, result.message)
    elif result.kind == "fatal":
        log.error("ddns %s: %s; stopped — %s", entry.name, result.message, stopped_hint(entry.name))
    else:
        log.warning("ddns %s: %s", entry.name, result.message)


def _read_secrets(entry: Any) -> dict[str, Secret]:
    """The entry's secrets by key; SecretUnavailable naming the first that cannot be read."""
    secrets: dict[str, Secret] = {}
    for name, ref in entry.secrets.items():
        secrets[name] = read_secret(ref)  # its file's mode was checked when the config was loaded
    return secrets


def _values(secrets: dict[str, Secret]) -> dict[str, str]:
    return {k: v.value for k, v in secrets.items()}
