"""`natlink run --once`: one screen of what the round did (like `ddclient -daemon=0 -verbose`), and the same as
one JSON document. PURE: built from Service.round (what each job recorded) and the jobs' Results."""

from __future__ import annotations

from typing import Any

from natlink.service.policy import DDNS, MAPPINGS, PROBE
from natlink.service.slots import JobResult


def document(round_: dict[str, Any], results: dict[str, JobResult], state_dir: str) -> dict[str, Any]:
    """The --json document: every job's outcome and what it did; ok = every job that ran succeeded."""
    jobs = {name: {"ok": r.ok, "outcome": r.outcome, "error": r.error, **(round_.get(name) or {})}
            for name, r in results.items()}
    return {"ok": bool(results) and all(r.ok for r in results.values()), "jobs": jobs, "state_dir": state_dir}


def lines(doc: dict[str, Any]) -> list[str]:
    """Human lines, one per thing done or found; failures say what failed, never a retry (none will come)."""
    jobs = doc["jobs"]
    out: list[str] = []
    m = jobs.get(MAPPINGS)
    if m is not None:
        if m.get("wan_problem") or m.get("error"):
            out.append(f"mappings:  FAILED: {m.get('wan_problem') or m.get('error')}")
        for a in m.get("actions", []):
            verdict = "ok" if a["ok"] else "FAILED"
            detail = a["detail"] if a["ok"] else ((a.get("error") or {}).get("message") or a["detail"])
            out.append(f"mapping   {a['name']}: {a['action']} {verdict}: {detail}")
        if not m.get("actions") and not m.get("wan_problem") and not m.get("error"):
            out.append("mappings:  nothing to do")
    d = jobs.get(DDNS)
    if d is not None:
        ip = d.get("public_ip") or {}
        if ip:
            out.append(f"public IP: {ip.get('public_ipv4') or 'unknown'} ({ip.get('verdict')})"
                       + (f" — {ip['problem']}" if ip.get("problem") else ""))
        elif d.get("error"):
            out.append(f"public IP: FAILED: {d['error']}")
        for e in d.get("entries", []):
            label = {"success": "updated", "fatal": "STOPPED", "transient": "FAILED"}.get(e["kind"]) or {
                "skip": "up to date", "wait": "waiting", "blocked": "STOPPED", "no-ip": "not updated",
                "error": "FAILED"}.get(e["action"], e["action"])
            sent = f", {e['requests']} request(s)" if e.get("requests") else ", no request"
            out.append(f"ddns      {e['name']} ({e['provider']}): {label} [{e['outcome']}]{sent}: {e['message']}")
    p = jobs.get(PROBE)
    if p is not None:
        for r in p.get("results", []):
            out.append(f"probe     {r['name']} {r['target']} ({r['family']}): {r['verdict']}"
                       + ("" if r.get("ok") else f" — {r.get('detail')}"))
        if not p.get("results") and p.get("error"):
            out.append(f"probe:     FAILED: {p['error']}")
    failed = [name for name, j in jobs.items() if not j["ok"]]
    out.append("overall:   OK" if doc["ok"] else f"overall:   FAILED ({', '.join(failed) or 'no job ran'})")
    return out
