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
from dataclasses import dataclass, field
from typing import Any, Callable

from natlink.ddns import registry
from natlink.ddns.base import ProviderResult, transient
from natlink.ddns.http import HttpClient
from natlink.ddns.policy import EntryState, after_attempt, config_hash, decide, secret_hash, stopped_hint
from natlink.errors import UsageError
from natlink.secrets import Secret, SecretUnavailable, read_secret, redact

log = logging.getLogger(__name__)

PROVIDER_TIMEOUT = 10.0


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

    @property
    def failed(self) -> bool:
        return self.fatal or self.kind == "transient" or self.action in ("no-ip", "error")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "action": self.action, "outcome": self.outcome,
                "fatal": self.fatal, "kind": self.kind, "message": self.message, "addresses": self.addresses,
                "next_attempt": self.next_attempt, "verify_problem": self.verify_problem,
                "requests": self.requests}


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
               http_factory: Callable[[], HttpClient] | None = None) -> list[EntryResult]:
    """Run one round over the selected entries (all when names is empty/None)."""
    entries = select_entries(cfg, names)
    rng = rng or random.Random()
    return [update_entry(e, store, report, force=force, now=time.time() if now is None else now, rng=rng,
                         http_factory=http_factory) for e in entries]


def update_entry(entry: Any, store: Any, report: Any, *, force: bool, now: float, rng: random.Random,
                 http_factory: Callable[[], HttpClient] | None = None) -> EntryResult:
    key = f"ddns-{entry.name}"
    state = EntryState.from_json(store.load(key))
    want: dict[int, str | None] = {}
    if entry.ipv4:
        want[4] = report.public_ipv4
    if entry.ipv6:
        want[6] = report.public_ipv6
    spec = registry.PROVIDERS[entry.provider]
    keepalive = entry.keepalive if entry.keepalive is not None else spec.keepalive
    cfg_hash = config_hash(entry.config_hash_items())
    secrets: dict[str, Secret] | None = None
    values_hash = None
    if state.fatal and not force and state.secret_salt:
        # Stopped: a new value in the same password file is the fix the stop asked for. Read the secrets
        # (local, no request) to see whether it happened; unreadable ones leave the entry stopped.
        try:
            secrets = _read_secrets(entry)
            values_hash = secret_hash(_values(secrets), state.secret_salt)
        except SecretUnavailable:
            secrets = None
    decision = decide(state, want, cfg_hash, now, keepalive, force, values_hash)
    base = dict(name=entry.name, provider=entry.provider, addresses=dict(state.published))

    if decision.action != "update":
        outcome = {"skip": "unchanged", "wait": "backoff", "blocked": state.last_outcome or "blocked",
                   "no-ip": "no-ip"}[decision.action]
        message = decision.reason
        if decision.action == "skip" and state.published:
            message = f"{', '.join(state.published.values())} already published; nothing sent"
        if decision.action == "no-ip" and getattr(report, "problem", None):
            message = f"{message}: {report.problem}"
        if decision.action == "blocked":
            message = f"{message} — {stopped_hint(entry.name)}"
        log.debug("ddns %s: %s (%s)", entry.name, decision.action, message)
        return EntryResult(action=decision.action, outcome=outcome, fatal=decision.action == "blocked",
                           message=message, next_attempt=state.next_attempt, **base)

    try:
        if secrets is None:
            secrets = _read_secrets(entry)
    except SecretUnavailable as exc:
        # Not persisted as fatal: nothing was sent, and the secret may appear (env, mounted file) by the next round.
        return EntryResult(action="error", outcome="secret", fatal=True, kind="fatal",
                           message=f"{exc.message} — {exc.hint}", **base)
    http = http_factory() if http_factory else HttpClient(timeout=PROVIDER_TIMEOUT)
    try:
        provider = spec.make(entry, secrets, http=http, timeout=PROVIDER_TIMEOUT)
    except ValueError as exc:  # e.g. an unreadable TSIG key file: a config problem, nothing was sent
        return EntryResult(action="error", outcome="config", fatal=True, kind="fatal",
                           message=redact(str(exc), list(secrets.values())), **base)

    sent = decision.addresses
    log.info("ddns %s: updating %s (%s)", entry.name, ", ".join(entry.hostnames), decision.reason)
    try:
        result = provider.update(sent)
    except Exception as exc:  # a bug in one provider must not stop the others; the class name is safe to show
        log.debug("ddns %s: provider crashed", entry.name, exc_info=True)
        result = transient("internal", f"internal error in the {entry.provider} provider "
                                       f"({exc.__class__.__name__}); run with -v and report it")
    result = ProviderResult(result.outcome, result.kind, redact(result.message, list(secrets.values())),
                            result.retry_after)
    verify_problem = None
    if result.ok and entry.verify and result.outcome != "nochg":
        try:
            verify_problem = provider.verify(sent)
        except Exception as exc:
            verify_problem = f"verification failed ({exc.__class__.__name__})"
        if verify_problem:
            verify_problem = redact(verify_problem, list(secrets.values()))
            log.warning("ddns %s: updated, but %s", entry.name, verify_problem)

    salt = state.secret_salt or os.urandom(16).hex()
    new_state = after_attempt(state, result, sent, cfg_hash, now, rng.random(),
                              secrets=(secret_hash(_values(secrets), salt), salt))
    document = new_state.to_json()
    document.update(provider=entry.provider, hostnames=list(entry.hostnames))
    store.save(key, document)

    if result.kind == "success":
        log.info("ddns %s: %s", entry.name, result.message)
    elif result.kind == "fatal":
        log.error("ddns %s: %s; stopped — %s", entry.name, result.message, stopped_hint(entry.name))
    else:
        log.warning("ddns %s: %s", entry.name, result.message)
    base["addresses"] = dict(new_state.published)
    return EntryResult(action="update", outcome=result.outcome, fatal=result.kind == "fatal", kind=result.kind,
                       message=result.message, next_attempt=new_state.next_attempt, verify_problem=verify_problem,
                       requests=provider.requests_sent, **base)


def _read_secrets(entry: Any) -> dict[str, Secret]:
    """The entry's secrets by key; SecretUnavailable naming the first that cannot be read."""
    secrets: dict[str, Secret] = {}
    for name, ref in entry.secrets.items():
        secrets[name] = read_secret(ref)  # its file's mode was checked when the config was loaded
    return secrets


def _values(secrets: dict[str, Secret]) -> dict[str, str]:
    return {k: v.value for k, v in secrets.items()}
