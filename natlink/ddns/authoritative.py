"""PURE: what the zone's authoritative server answered for a DDNS name, as kept in its state document.

Each name's note under "hosts" keeps {"addresses": {"ipv4": [...]}, "server", "at", "problem"}: the answer
per family asked (or why it could not be asked). The state is saved only when the answer or its problem
changed, or when the kept age is older than REFRESH (so the page's age never lags the truth by more than
that, at the cost of at most one write per entry per round).
"""

from __future__ import annotations

from typing import Any

from natlink.ddns.policy import FAMILY_KEYS

REFRESH = 300.0  # seconds: an unchanged answer is re-saved (its age refreshed) at most this often
KEY = "authoritative"


def answer(records: list[Any], now: float) -> dict[str, Any]:
    """The note for one name from live.LiveRecord's (one per family asked)."""
    problems = [r.problem for r in records if r.problem]
    addresses = {FAMILY_KEYS[r.family]: sorted(r.addresses) for r in records if r.addresses is not None}
    server = next((r.server for r in records if r.server and r.problem is None), "") or \
        next((r.server for r in records if r.server), "")
    return {"addresses": addresses, "server": server, "at": now, "problem": "; ".join(problems) or None}


def changed(old: Any, new: dict[str, Any], since: float | None = None) -> bool:
    """Whether saving `new` over `old` would be worth a write: a different answer, server or problem, an age
    that would otherwise lag by REFRESH or more, or one from before `since` (the running service's start: the
    page would call the answer "from an earlier run" although this run asked it)."""
    if not isinstance(old, dict):
        return True
    same = all(old.get(k) == new.get(k) for k in ("addresses", "server", "problem"))
    at = old.get("at")
    if not same or not isinstance(at, (int, float)):
        return True
    return new["at"] - at >= REFRESH or (since is not None and at < since)


def for_status(hosts: Any, hostnames: list[str]) -> dict[str, dict[str, Any]]:
    """hostname -> its kept answer (plus what that name has published), for `natlink status` and the page."""
    if not isinstance(hosts, dict):
        return {}
    out = {}
    for h in hostnames:
        rec = hosts.get(h)
        note = rec.get(KEY) if isinstance(rec, dict) else None
        if isinstance(note, dict):
            out[h] = {**note, "published": dict(rec.get("published") or {})}
    return out


def status_words(note: Any, published: dict[str, Any], verify: bool | None) -> str:
    """PURE: one name's kept answer in plain words for `natlink status` (its age is added by the caller):
    what the zone's own name server answered, and whether that is what natlink published."""
    if not isinstance(note, dict):
        return "never checked against its name server: verify = false for this entry" if verify is False else \
            "its name server: never asked yet (each DDNS round asks it; `natlink doctor` too)"
    if note.get("problem"):
        return f"its name server could not be asked: {note['problem']}"
    answered = note.get("addresses") if isinstance(note.get("addresses"), dict) else {}
    mine = note.get("published") if isinstance(note.get("published"), dict) else published
    shown = ", ".join(ip for ips in answered.values() for ip in ips) or "no record"
    server = f" ({note['server']})" if note.get("server") else ""
    differs = [str(mine[f]) for f, ips in answered.items() if f in mine and list(ips) != [mine[f]]]
    if differs:
        return f"its name server{server} answers {shown}, NOT what natlink published ({', '.join(differs)})"
    return f"its name server{server} answers {shown}" + (", as published" if mine and answered else "")
