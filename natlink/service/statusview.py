"""`natlink status`: the last known state of everything, read from the state directory (never from the network)."""

from __future__ import annotations

import time
from typing import Any

from natlink.config import Config
from natlink.durations import format_duration
from natlink.service.health import STATE_KEY, liveness, pid_alive
from natlink.state import StateStore


def gather(cfg: Config, store: StateStore, now: float | None = None) -> dict[str, Any]:
    """One JSON document: service health, mappings, public IP, DDNS entries, probes; plus an overall ok."""
    now = time.time() if now is None else now
    svc = store.load(STATE_KEY) or {}
    state = liveness(svc, now, pid_alive(svc.get("pid")))
    jobs = svc.get("jobs") or {}
    verified = (jobs.get("mappings") or {}).get("last_success")

    owned = store.load("mappings") or {}
    mappings = []
    for m in cfg.mappings:
        rec = owned.get(m.name)
        entry: dict[str, Any] = {"name": m.name, "protocol": m.protocol, "external_port": m.external_port,
                                 "internal": f"{m.internal_ip or cfg.router.lan_ip}:{m.internal_port}",
                                 "present": rec is not None, "last_verified": verified}
        if isinstance(rec, dict):
            lease, granted = rec.get("lease") or 0, rec.get("granted_at")
            entry.update(via=rec.get("via"), external_port=rec.get("external_port", m.external_port),
                         granted_at=granted, renew_at=rec.get("renew_at"),
                         lease_left=None if not lease or granted is None else max(0.0, granted + lease - now))
            if entry["lease_left"] == 0.0:
                entry["present"] = False  # expired: the router dropped it
        mappings.append(entry)

    ddns = []
    for d in cfg.ddns:
        rec = store.load(f"ddns-{d.name}") or {}
        ddns.append({"name": d.name, "provider": d.provider, "hostnames": list(d.hostnames),
                     "published": rec.get("published") or {}, "last_success": rec.get("last_success"),
                     "last_attempt": rec.get("last_attempt"), "outcome": rec.get("last_outcome"),
                     "message": rec.get("last_message"), "next_attempt": rec.get("next_attempt"),
                     "stopped": bool(rec.get("fatal"))})
    probe = store.load("probe") or {}
    publicip = store.load("publicip") or {}

    problems = []
    if state not in ("running", "oneshot"):
        problems.append(f"service {state}")
    problems += [f"mapping {m['name']} missing" for m in mappings if not m["present"]]
    problems += [f"ddns {d['name']} {d['outcome']}" for d in ddns if d["stopped"]]
    problems += [f"probe {r.get('name')} {r.get('verdict')}" for r in probe.get("results", []) if not r.get("ok")]
    problems += [f"{name} failing" for name, j in jobs.items() if (j or {}).get("failures")]
    return {
        "ok": not problems, "problems": problems,
        "service": {"state": state, "pid": svc.get("pid"), "started": svc.get("started"),
                    "heartbeat": svc.get("heartbeat"), "stopped": svc.get("stopped"), "version": svc.get("version"),
                    "jobs": jobs, "counters": svc.get("counters") or {}, "router": svc.get("router") or {},
                    "stopped_entries": svc.get("stopped_entries") or {}},
        "public_ip": {k: publicip.get(k) for k in ("public_ipv4", "public_ipv6", "router_wan_ipv4", "verdict",
                                                   "problem", "checked_at")},
        "mappings": mappings, "ddns": ddns,
        "probes": {"checked_at": probe.get("checked_at"), "results": probe.get("results", [])},
        "state_dir": str(store.directory),
    }


def _ago(ts: Any, now: float) -> str:
    if not isinstance(ts, (int, float)):
        return "never"
    delta = now - ts
    return f"{format_duration(delta)} ago" if delta >= 1 else "just now"


def _in(ts: Any, now: float) -> str:
    if not isinstance(ts, (int, float)):
        return "-"
    return f"in {format_duration(ts - now)}" if ts > now else "now"


SERVICE_WORDS = {
    "running": "running", "oneshot": "one-shot runs (natlink run --once)", "stopped": "not running (stopped cleanly)",
    "dead": "not running (it ended without a clean stop: crash or kill)", "hung": "not answering (heartbeat is stale)",
    "never": "not running (it has never run with this state directory)",
}


def render(doc: dict[str, Any], now: float) -> list[str]:
    """PURE: human lines for the document from gather()."""
    svc = doc["service"]
    lines = [f"service:   {SERVICE_WORDS.get(svc['state'], svc['state'])}"
             + (f", pid {svc['pid']}, up {_ago(svc['started'], now).removesuffix(' ago')}" if svc["state"] == "running" else "")
             + (f", last seen {_ago(svc['heartbeat'] or svc['stopped'], now)}" if svc["state"] in ("dead", "hung", "stopped") else "")]
    for name, j in sorted(svc["jobs"].items()):
        line = f"  {name:<10} {j.get('last_outcome') or 'pending':<10} last ok {_ago(j.get('last_success'), now)}"
        if j.get("failures"):
            line += f", {j['failures']} failure(s): {j.get('last_error')}"
        lines.append(line)
    ip = doc["public_ip"]
    if ip.get("verdict"):
        lines.append(f"public IP: {ip.get('public_ipv4') or 'unknown'} ({ip['verdict']}; router WAN "
                     f"{ip.get('router_wan_ipv4') or 'none'}; checked {_ago(ip.get('checked_at'), now)})"
                     + (f" — {ip['problem']}" if ip.get("problem") else ""))
    else:
        lines.append("public IP: not checked yet")
    for m in doc["mappings"]:
        if m["present"]:
            left = m.get("lease_left")
            lease = "permanent" if left is None else f"lease {format_duration(left)} left"
            lines.append(f"mapping   {m['name']}: {m['protocol'].upper()} {m['external_port']} -> {m['internal']} "
                         f"present via {m.get('via') or '?'}, {lease}, verified {_ago(m['last_verified'], now)}")
        else:
            lines.append(f"mapping   {m['name']}: {m['protocol'].upper()} {m['external_port']} -> {m['internal']} MISSING")
    for d in doc["ddns"]:
        published = ", ".join(f"{v}" for v in d["published"].values()) or "nothing yet"
        line = (f"ddns      {d['name']} ({d['provider']}): {published}; last success {_ago(d['last_success'], now)}; "
                f"outcome {d['outcome'] or '-'}")
        if d["stopped"]:
            line += f"; STOPPED: {d['message']} (fix the config and reload)"
        elif d["next_attempt"]:
            line += f"; next attempt {_in(d['next_attempt'], now)}"
        lines.append(line)
    results = doc["probes"]["results"]
    for r in results:
        lines.append(f"probe     {r.get('name')} {r.get('target')} ({r.get('family')}): {r.get('verdict')}, "
                     f"checked {_ago(doc['probes']['checked_at'], now)}")
    if not results:
        lines.append("probe:    no result yet")
    lines.append("overall:   OK" if doc["ok"] else "overall:   " + "; ".join(doc["problems"]))
    return lines
