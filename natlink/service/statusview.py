"""`natlink status`: the last known state of everything, read from the state directory (never from the network).

Every line says how old its fact is. Works without a loadable config (the service may be running on the one it
loaded before the file on disk broke): then the mappings and DDNS entries are those the state records."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

from natlink.config import Config, default_state_dir, find_config_path
from natlink.ddns.authoritative import for_status, status_words
from natlink.ddns.policy import stopped_hint
from natlink.durations import format_duration
from natlink.service.health import STATE_KEY, liveness, pid_alive
from natlink.state import InstanceLock, StateStore


def fallback_state_dir(config_path: str | None) -> str:
    """The state directory when the config does not load: its [service] state_dir if the file is at least valid
    TOML, else the default. Never raises."""
    path = find_config_path(config_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        data = {}
    configured = (data.get("service") or {}).get("state_dir") if isinstance(data.get("service"), dict) else None
    if isinstance(configured, str):
        p = Path(configured).expanduser()
        return str(p if p.is_absolute() or path is None else path.parent / p)
    return default_state_dir(path)


def service_alive(store: StateStore, pid: Any) -> bool:
    """The instance lock says whether a service holds this state directory; pid_alive when it cannot be read
    (or was written by a natlink from before the lock)."""
    lock = InstanceLock(store.directory)
    try:
        if lock.path.exists():
            return lock.holder() is not None
    except OSError:
        pass
    return pid_alive(pid)


def gather(cfg: Config | None, store: StateStore, now: float | None = None,
           config_error: str | None = None) -> dict[str, Any]:
    """One JSON document: service health, mappings, public IP, DDNS entries, probes; plus an overall ok.
    cfg None: the config did not load (config_error says why); the state alone is shown."""
    now = time.time() if now is None else now
    store.readable()  # "never run" for a directory we may not read would be a lie
    svc = store.load(STATE_KEY) or {}
    state = liveness(svc, now, service_alive(store, svc.get("pid")))
    jobs = svc.get("jobs") or {}
    checked = (jobs.get("mappings") or {}).get("last_end")
    verified = (jobs.get("mappings") or {}).get("last_success")

    owned = store.load("mappings") or {}
    mappings = []
    wanted = [(m.name, m.protocol, m.external_port, f"{m.internal_ip or cfg.router.lan_ip}:{m.internal_port}")
              for m in cfg.mappings] if cfg else [
        (name, r.get("protocol", "?"), r.get("external_port"), f"{r.get('internal_ip')}:{r.get('internal_port')}")
        for name, r in sorted(owned.items()) if isinstance(r, dict)]
    for name, protocol, port, internal in wanted:
        rec = owned.get(name)
        entry: dict[str, Any] = {"name": name, "protocol": protocol, "external_port": port, "internal": internal,
                                 "present": rec is not None, "last_verified": verified, "last_checked": checked}
        if isinstance(rec, dict):
            lease, granted = rec.get("lease") or 0, rec.get("granted_at")
            entry.update(via=rec.get("via"), external_port=rec.get("external_port", port),
                         granted_at=granted, renew_at=rec.get("renew_at"),
                         lease_left=None if not lease or granted is None else max(0.0, granted + lease - now))
            if entry["lease_left"] == 0.0:
                entry["present"] = False  # expired: the router dropped it
        mappings.append(entry)

    names = [(d.name, d.provider, list(d.hostnames)) for d in cfg.ddns] if cfg else [
        (k.removeprefix("ddns-"), None, None) for k in store.keys("ddns-")]
    verify = {d.name: d.verify for d in cfg.ddns} if cfg else {}
    ddns = []
    for name, provider, hostnames in names:
        rec = store.load(f"ddns-{name}") or {}
        hostnames = hostnames or rec.get("hostnames") or []
        ddns.append({"name": name, "provider": provider or rec.get("provider"),
                     "hostnames": hostnames, "authoritative": for_status(rec.get("hosts"), hostnames),
                     "verify": verify.get(name),
                     "published": rec.get("published") or {}, "last_success": rec.get("last_success"),
                     "last_attempt": rec.get("last_attempt"), "outcome": rec.get("last_outcome"),
                     "message": rec.get("last_message"), "next_attempt": rec.get("next_attempt"),
                     "stopped": bool(rec.get("fatal")), "hint": stopped_hint(name) if rec.get("fatal") else None})
    probe = store.load("probe") or {}
    publicip = store.load("publicip") or {}

    problems = []
    if config_error:
        problems.append("config does not load")
    if state not in ("running", "oneshot"):
        problems.append(f"service {state}")
    problems += [f"mapping {m['name']} missing" for m in mappings if not m["present"]]
    problems += [f"ddns {d['name']} {d['outcome']}" for d in ddns if d["stopped"]]
    problems += [f"probe {r.get('name')} {r.get('verdict')}" for r in probe.get("results", []) if not r.get("ok")]
    problems += [f"{name} failing" for name, j in jobs.items() if (j or {}).get("failures")]
    config_path = cfg.path if cfg else find_config_path(None) if config_error is None else None
    return {
        "ok": not problems, "problems": problems, "now": now,
        "config": {"path": str(config_path) if config_path else svc.get("config"), "error": config_error,
                   "service_loaded": svc.get("config")},
        "service": {"state": state, "pid": svc.get("pid"), "started": svc.get("started"),
                    "heartbeat": svc.get("heartbeat"), "stopped": svc.get("stopped"), "version": svc.get("version"),
                    "jobs": jobs, "counters": svc.get("counters") or {}, "router": svc.get("router") or {},
                    "stopped_entries": svc.get("stopped_entries") or {}},
        "public_ip": {k: publicip.get(k) for k in ("public_ipv4", "public_ipv6", "router_wan_ipv4", "verdict",
                                                   "problem", "checked_at")},
        "mappings": mappings, "ddns": ddns, "pinholes": _pinholes(store, now),
        "probes": {"checked_at": probe.get("checked_at"), "results": probe.get("results", [])},
        "state_dir": str(store.directory),
    }


def _pinholes(store: StateStore, now: float) -> list[dict[str, Any]]:
    """natlink's IPv6 pinholes as last recorded (what the router confirmed when they were opened or renewed)."""
    from natlink.portmap.pinhole_plan import load_owned

    try:
        owned = load_owned(store)
    except Exception:  # noqa: BLE001 - a damaged record is shown as none, the mappings job rewrites it
        return []
    return [{"name": n, "pinhole": h.label, "via": h.mapper, "renewed": h.at, "lease_left": h.at + h.lease - now}
            for n, h in sorted(owned.items())]


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


def _service_line(svc: dict[str, Any], now: float) -> str:
    state = svc["state"]
    line = f"service:   {SERVICE_WORDS.get(state, state)}"
    if state == "running":
        line += f", pid {svc['pid']}, up {_ago(svc['started'], now).removesuffix(' ago')}, " \
                f"heartbeat {_ago(svc['heartbeat'], now)}"
    elif state == "oneshot":
        line += f", last round {_ago(svc['stopped'] or svc['heartbeat'], now)}"
    elif state in ("dead", "hung", "stopped"):
        line += f", last seen {_ago(svc['heartbeat'] or svc['stopped'], now)}"
    return line


def render(doc: dict[str, Any], now: float) -> list[str]:
    """PURE: human lines for the document from gather(); each fact with its age."""
    svc = doc["service"]
    lines = []
    if doc["config"]["error"]:
        lines.append(f"config:    {doc['config']['error']} — what follows is what the service last saw"
                     + (" (it keeps running on the config it loaded)" if svc["state"] == "running" else ""))
    lines.append(_service_line(svc, now))
    for name, j in sorted(svc["jobs"].items()):
        line = (f"  {name:<10} {j.get('last_outcome') or 'pending':<14} ran {_ago(j.get('last_end'), now)}, "
                f"last ok {_ago(j.get('last_success'), now)}")
        if j.get("failures"):
            line += f", {j['failures']} failure(s): {j.get('last_error')}"
        lines.append(line)
    ip = doc["public_ip"]
    if ip.get("verdict"):
        lines.append(f"public IP: {ip.get('public_ipv4') or 'unknown'} ({ip['verdict']}; router WAN "
                     f"{ip.get('router_wan_ipv4') or 'none'}; checked {_ago(ip.get('checked_at'), now)})"
                     + (f" — {ip['problem']}" if ip.get("problem") else ""))
    else:
        lines.append("public IP: not checked yet (no detection recorded in this state directory)")
    if ip.get("public_ipv6"):
        lines.append(f"public IPv6: {ip['public_ipv6']} (checked {_ago(ip.get('checked_at'), now)})")
    from natlink.portmap.pinhole_plan import MAPPER_LABEL

    for p in doc.get("pinholes", []):
        left = p["lease_left"]
        state = f"lease {format_duration(int(left))} left" if left > 0 else "EXPIRED (the mappings job renews it)"
        lines.append(f"pinhole   {p['name']}: {p['pinhole']} via {MAPPER_LABEL.get(p['via'], p['via'])}, {state}, "
                     f"confirmed by the router {_ago(p['renewed'], now)}")
    for m in doc["mappings"]:
        head = f"mapping   {m['name']}: {str(m['protocol']).upper()} {m['external_port']} -> {m['internal']}"
        if m["present"]:
            left = m.get("lease_left")
            lease = "permanent" if left is None else f"lease {format_duration(left)} left"
            lines.append(f"{head} present via {m.get('via') or '?'}, {lease}, verified {_ago(m['last_verified'], now)}")
        else:
            lines.append(f"{head} MISSING (no live natlink record; mappings last ran {_ago(m['last_checked'], now)})")
    for d in doc["ddns"]:
        published = ", ".join(f"{v}" for v in d["published"].values()) or "nothing yet"
        line = (f"ddns      {d['name']} ({d['provider'] or '?'}): {published}; last success "
                f"{_ago(d['last_success'], now)}; outcome {d['outcome'] or '-'} {_ago(d['last_attempt'], now)}")
        if d["stopped"]:
            line += f"; STOPPED: {d['message']} — {d['hint']}"
        elif d["next_attempt"]:
            line += f"; next attempt {_in(d['next_attempt'], now)}"
        lines.append(line)
        for host in d.get("hostnames") or []:
            note = (d.get("authoritative") or {}).get(host)
            asked = f" (asked {_ago(note.get('at'), now)})" if isinstance(note, dict) else ""
            lines.append(f"  {host}: {status_words(note, d['published'], d.get('verify'))}{asked}")
    results = doc["probes"]["results"]
    for r in results:
        lines.append(f"probe     {r.get('name')} {r.get('target')} ({r.get('family')}): {r.get('verdict')}, "
                     f"checked {_ago(doc['probes']['checked_at'], now)}")
    if not results:
        lines.append("probe:     no result yet")
    lines.append("overall:   OK" if doc["ok"] else "overall:   " + "; ".join(map(problem_words, doc["problems"])))
    return lines


SERVICE_PROBLEMS = {"never": "the service has never run here", "dead": "the service ended without a clean stop",
                    "stopped": "the service is stopped", "hung": "the service is not answering"}


def problem_words(problem: str) -> str:
    """PURE: a problem code of the JSON document ("service never", "ddns home badauth") as the text line says it."""
    kind, _, rest = problem.partition(" ")
    if kind == "service" and rest in SERVICE_PROBLEMS:
        return SERVICE_PROBLEMS[rest]
    if kind == "ddns":
        name, _, outcome = rest.partition(" ")
        return f"DDNS {name} stopped ({outcome})"
    if problem.endswith(" failing"):
        return f"the {problem.removesuffix(' failing')} job is failing"
    return problem
