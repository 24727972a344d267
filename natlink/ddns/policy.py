"""Pure DDNS policy: when to contact a provider, and what to remember afterwards.

Update only when the address differs from the last one published, the entry's config changed, or the
keep-alive age passed; otherwise zero requests (providers ban clients that repeat unchanged updates).
Fatal outcomes block the entry until its config or the value of one of its secrets changes (or --force);
transient ones back off
exponentially with jitter, capped. No I/O here; table-tested in tests/unit/test_ddns_policy.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from natlink.ddns.base import ProviderResult
from natlink.durations import format_duration

BACKOFF_BASE = 60.0  # first retry after a transient failure: 30-60 s
BACKOFF_CAP = 3600.0  # never wait more than an hour between transient retries ...
RETRY_AFTER_CAP = 86400.0  # ... unless the provider asks for longer (Retry-After), up to a day

FAMILY_KEYS = {4: "ipv4", 6: "ipv6"}


@dataclass(frozen=True)
class EntryState:
    """The recap of one [[ddns]] entry (state key "ddns-<name>"); never holds a secret."""

    published: dict[str, str] = field(default_factory=dict)  # {"ipv4": "...", "ipv6": "..."} last told to the provider
    last_attempt: float | None = None
    last_success: float | None = None
    next_attempt: float | None = None  # earliest time a transient failure may be retried
    last_outcome: str | None = None
    last_message: str | None = None
    fatal: bool = False  # a fatal outcome blocks the entry until config or a secret's value changes, or --force
    failures: int = 0  # consecutive transient failures
    config_hash: str | None = None
    # A salted, stretched hash of the secret values last sent: a fixed password file unblocks a stopped entry
    # although its path (all config_hash sees) is the same. Never the value itself.
    secret_hash: str | None = None
    secret_salt: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> "EntryState":
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            state = cls(**known)
        except TypeError:
            return cls()
        if not isinstance(state.published, dict):
            state = replace(state, published={})
        return state


@dataclass(frozen=True)
class UpdateDecision:
    """Whether one DDNS entry sends an update now, and why."""

    action: str  # "update" | "skip" | "wait" | "blocked" | "no-ip"
    reason: str
    addresses: dict[int, str] = field(default_factory=dict)  # what to send when action == "update"
    drift: bool = False  # the update repairs a live record that differs from what was published


def config_hash(items: dict[str, Any]) -> str:
    """Stable short hash of an entry's config (DdnsCfg.config_hash_items(): no secret values)."""
    text = json.dumps(items, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def secret_hash(values: dict[str, str], salt: str) -> str:
    """PBKDF2 over the secret values (sorted by key) with a per-entry salt: enough to notice a change, useless
    for recovering a password from the state file (and ~4 ms, paid only on updates and for stopped entries)."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.pbkdf2_hmac("sha256", text.encode(), bytes.fromhex(salt), 20000).hex()[:32]


def stopped_hint(name: str) -> str:
    """The one hint for an entry stopped by a fatal answer, the same in `natlink ddns`, `status`, logs, alerts."""
    return (f"fix [[ddns]] {name!r} (credentials, hostname, account) or the secret it reads; natlink tries it "
            f"again by itself once that changed (or now: natlink ddns --force {name})")


def decide(state: EntryState, want: dict[int, str | None], cfg_hash: str, now: float,
           keepalive: int = 0, force: bool = False, secrets_hash: str | None = None) -> UpdateDecision:
    """What to do for one entry. `want` maps each enabled family to the detected address (None = unknown).
    secrets_hash: secret_hash() of the secret values now (needed only for a stopped entry; None = unknown)."""
    known = {fam: ip for fam, ip in sorted(want.items()) if ip}
    if not known:
        return UpdateDecision("no-ip", "public address unknown; records left as they are")
    config_changed = state.config_hash is not None and state.config_hash != cfg_hash
    secret_changed = None not in (state.secret_hash, secrets_hash) and state.secret_hash != secrets_hash
    if state.fatal and not config_changed and not secret_changed and not force:
        return UpdateDecision("blocked", f"stopped after {state.last_outcome}: {state.last_message or 'fatal error'}")
    if force:
        return UpdateDecision("update", "forced", known)
    if config_changed:
        return UpdateDecision("update", "config changed", known)
    if secret_changed:
        return UpdateDecision("update", "a secret changed", known)
    if state.next_attempt is not None and now < state.next_attempt:
        return UpdateDecision("wait", f"backing off after {state.last_outcome} (next try in "
                                      f"{int(state.next_attempt - now)}s)")
    changed = [fam for fam, ip in known.items() if state.published.get(FAMILY_KEYS[fam]) != ip]
    if changed:
        parts = []
        for fam in changed:
            old = state.published.get(FAMILY_KEYS[fam])
            parts.append(f"{old} -> {known[fam]}" if old else f"first update ({known[fam]})")
        return UpdateDecision("update", "; ".join(parts), known)
    if keepalive > 0 and (state.last_success is None or now - state.last_success >= keepalive):
        return UpdateDecision("update", f"keep-alive (unchanged for {format_duration(keepalive)} or more)", known)
    return UpdateDecision("skip", "unchanged")


def backoff_delay(failures: int, fraction: float, retry_after: float | None = None,
                  base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds before retry n (1-based): base*2^(n-1) capped, with "equal jitter" (half fixed, half random)
    so a fleet of clients does not retry in step. `fraction` in [0, 1) is the random part (injected)."""
    delay = min(cap, base * (2 ** max(0, failures - 1)))
    delay = delay / 2 + fraction * delay / 2
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


def after_attempt(state: EntryState, result: ProviderResult, sent: dict[int, str], cfg_hash: str,
                  now: float, fraction: float, secrets: tuple[str, str] | None = None) -> EntryState:
    """The new recap after one attempt; secrets = (secret_hash, salt) of the values sent."""
    base = replace(state, last_attempt=now, last_outcome=result.outcome, last_message=result.message,
                   config_hash=cfg_hash)
    if secrets is not None:
        base = replace(base, secret_hash=secrets[0], secret_salt=secrets[1])
    if result.kind == "success":
        published = dict(state.published)
        published.update({FAMILY_KEYS[f]: ip for f, ip in sent.items()})
        return replace(base, published=published, last_success=now, next_attempt=None, fatal=False, failures=0)
    if result.kind == "fatal":
        return replace(base, fatal=True, next_attempt=None, failures=state.failures + 1)
    failures = state.failures + 1
    return replace(base, fatal=False, failures=failures,
                   next_attempt=now + backoff_delay(failures, fraction, result.retry_after))


def cooldown(decision: UpdateDecision, state: EntryState, now: float, min_interval: int) -> UpdateDecision:
    """An update the provider's documented minimum interval does not allow yet becomes a wait (--force is the
    caller's way around it): providers block clients that update more often than they ask."""
    if decision.action != "update" or min_interval <= 0 or state.last_attempt is None:
        return decision
    left = state.last_attempt + min_interval - now
    if left <= 0:
        return decision
    return UpdateDecision("wait", f"{decision.reason}, but the provider asks for at least "
                                  f"{format_duration(min_interval)} between updates (next try in {int(left) + 1}s)")
