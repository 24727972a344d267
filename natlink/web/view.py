"""PURE: the status page's facts, from the `natlink status` document (statusview.gather), the raw public-IP state
and the history. Every fact carries its time; a fact the running service has not seen itself is "unverified",
with why. No second source of truth: nothing here asks the network or keeps anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from natlink.service.statusview import SERVICE_WORDS

VERDICT_WORDS = {"public": "public", "cgnat": "CGNAT", "double-nat": "double NAT", "unknown": "unknown"}
IDENTITY_WORDS = {
    "nonce": "yes: the nonce came back, it was this host",
    "greeting": "yes: from outside it sends what the service sends first",
    "listener": "yes: natlink's own listener answered",
    "mismatch": "no: a different nonce came back (another host answered)",
    "other-host": "no: another host answered",
    "unproven": "not proven: something answered, but nothing identified this host",
}
HISTORY_SHOWN = 100


@dataclass
class Fact:
    """One line of the page: what, its value, when it was seen, and whether this run saw it."""

    label: str
    value: str
    at: float | None = None  # when it was seen (unix time); None: never
    current: bool = False  # seen by the running service (else "unverified", with why)
    why: str = ""  # why it is unverified, or a note
    level: str = "info"  # "good" | "bad" | "warn" | "info": the colour, always with words beside it


@dataclass
class Card:
    title: str
    facts: list[Fact] = field(default_factory=list)
    level: str = "info"
    action: str | None = None  # a DDNS entry name: the card has an "update now" button


@dataclass
class View:
    generated: float
    ok: bool
    problems: list[str]
    service: Card
    addresses: list[Card]
    mappings: list[Card]
    ddns: list[Card]
    probes: list[Card]
    history: list[dict[str, Any]]
    history_total: int = 0
    error: str | None = None  # the page could not read the state: nothing else is shown as current

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class _Run:
    """Decides whether a timestamp was seen by the running service."""

    def __init__(self, service: dict[str, Any]) -> None:
        self.running = service.get("state") == "running"
        self.started = _num(service.get("started"))
        self.state = service.get("state")

    def fact(self, label: str, value: str, at: Any, level: str = "info", why: str = "") -> Fact:
        ts = _num(at)
        if ts is None:
            return Fact(label, value, None, False, why or "not seen yet", "warn" if level == "good" else level)
        if self.running and self.started is not None and ts >= self.started - 1:
            return Fact(label, value, ts, True, why, level)
        reason = ("from an earlier run of the service" if self.running else
                  f"the service is {SERVICE_WORDS.get(str(self.state), self.state)}")
        return Fact(label, value, ts, False, f"{reason}; {why}" if why else reason,
                    "warn" if level == "good" else level)


def build(doc: dict[str, Any], publicip: dict[str, Any] | None, history: list[dict[str, Any]], now: float,
          pinholes: dict[str, Any] | None = None) -> View:
    """The page from gather()'s document, the raw "publicip" state (for the sources), the history entries and
    the raw "pinholes" state (IPv6 pinholes natlink opened)."""
    run = _Run(doc["service"])
    holes = (pinholes or {}).get("pinholes") if isinstance(pinholes, dict) else None
    return View(generated=now, ok=bool(doc.get("ok")), problems=list(doc.get("problems") or []),
                service=_service(doc, run), addresses=_addresses(doc, publicip or {}, run),
                mappings=[_mapping(m, run, now) for m in doc.get("mappings", [])]
                + [_pinhole(h, run) for _, h in sorted((holes or {}).items()) if isinstance(h, dict)],
                ddns=[_ddns(d, run) for d in doc.get("ddns", [])],
                probes=_probes(doc.get("probes") or {}, run),
                history=list(reversed(history))[:HISTORY_SHOWN], history_total=len(history))


def unreadable(message: str, now: float) -> View:
    """The page's own request failed (state unreadable): say so, show no fact as current."""
    return View(generated=now, ok=False, problems=[message], service=Card("Service", [], "bad"), addresses=[],
                mappings=[], ddns=[], probes=[], history=[], error=message)


def _service(doc: dict[str, Any], run: _Run) -> Card:
    svc = doc["service"]
    state = str(svc.get("state"))
    good = state == "running"
    facts = [Fact("state", SERVICE_WORDS.get(state, state), _num(svc.get("heartbeat")) or _num(svc.get("stopped")),
                  good, "" if good else "not running now: nothing on this page is being kept up to date",
                  "good" if good else "bad")]
    if svc.get("started"):
        facts.append(Fact("started", f"pid {svc.get('pid')}, natlink {svc.get('version') or '?'}",
                          _num(svc.get("started")), good))
    if doc["config"].get("error"):
        facts.append(Fact("config", doc["config"]["error"], None, True, "the service keeps the config it loaded", "bad"))
    for name, job in sorted((svc.get("jobs") or {}).items()):
        outcome = job.get("last_outcome") or "pending"
        value = outcome + (f" ({job.get('last_reason')})" if job.get("last_reason") else "")
        if job.get("failures"):
            value += f"; {job['failures']} failure(s) in a row: {job.get('last_error')}"
        level = "bad" if job.get("failures") else "good" if job.get("last_success") else "info"
        facts.append(run.fact(f"job {name}", value, job.get("last_end"), level))
    if doc.get("problems"):
        facts.append(Fact("problems", "; ".join(doc["problems"]), None, True, "", "bad"))
    return Card("Service", facts, "good" if good and doc.get("ok") else "bad" if not good else "warn")


def _addresses(doc: dict[str, Any], publicip: dict[str, Any], run: _Run) -> list[Card]:
    ip = doc.get("public_ip") or {}
    checked = ip.get("checked_at")
    sources = [s for s in publicip.get("sources") or [] if isinstance(s, dict)]
    cards = []
    for family, key, problem_key in ((4, "public_ipv4", "problem"), (6, "public_ipv6", "ipv6_problem")):
        address = ip.get(key) if family == 4 else publicip.get(key)
        mine = [s for s in sources if s.get("family") == family]
        if family == 6 and not address and not mine:
            continue  # IPv6 not asked for
        verdict = str(ip.get("verdict") or "unknown") if family == 4 else ("public" if address else "unknown")
        agreed = sorted({str(s.get("source")) for s in mine if s.get("accepted") and s.get("address") == address})
        others = sorted({f"{s.get('source')}: {s.get('address') or s.get('error') or s.get('note') or 'no answer'}"
                         for s in mine if not (s.get("accepted") and s.get("address") == address)})
        level = "good" if verdict == "public" and address else "bad" if checked else "info"
        problem = publicip.get(problem_key) or (ip.get("problem") if family == 4 else None)
        facts = [run.fact("address", address or "none", checked, level, problem or ""),
                 run.fact("verdict", VERDICT_WORDS.get(verdict, verdict), checked, level)]
        facts.append(run.fact("sources agreed", ", ".join(agreed) or "none", checked,
                              "good" if agreed else "warn"))
        if others:
            facts.append(run.fact("other answers", "; ".join(others), checked, "warn"))
        if family == 4 and ip.get("router_wan_ipv4"):
            facts.append(run.fact("router WAN", str(ip["router_wan_ipv4"]), checked))
        cards.append(Card(f"Public IPv{family}", facts, facts[0].level if facts[0].current else "warn"))
    if not cards:
        cards.append(Card("Public address", [run.fact("address", "not checked yet", None, "warn",
                                                      "no detection recorded in the state directory")], "warn"))
    return cards


def _mapping(m: dict[str, Any], run: _Run, now: float) -> Card:
    head = f"{str(m.get('protocol')).upper()} {m.get('external_port')} → {m.get('internal')}"
    facts = [Fact("mapping", head, None, True)]
    if m.get("present"):
        facts.append(run.fact("on the router", f"present via {m.get('via') or '?'}", m.get("granted_at"), "good"))
        left = _num(m.get("lease_left"))
        idle = "" if run.running else "the service is not running: nothing renews it"
        facts.append(Fact("lease ends", "permanent" if left is None else "", None if left is None else
                          round(now + left), run.running, idle))
        if m.get("renew_at"):
            facts.append(Fact("renews", "", _num(m["renew_at"]), run.running, idle))
    else:
        facts.append(run.fact("on the router", "MISSING: no live natlink mapping", m.get("last_checked"), "bad"))
    facts.append(run.fact("last verified", "the router confirmed it" if m.get("last_verified") else "never",
                          m.get("last_verified"), "good" if m.get("present") else "bad"))
    level = "good" if m.get("present") and facts[-1].current else "bad" if not m.get("present") else "warn"
    return Card(f"Mapping {m.get('name')}", facts, level)


def _pinhole(h: dict[str, Any], run: _Run) -> Card:
    """An IPv6 pinhole natlink opened: the record says when it was last opened or renewed, and for how long."""
    at, lease = _num(h.get("at")), _num(h.get("lease"))
    facts = [Fact("pinhole", f"{str(h.get('protocol')).upper()} [{h.get('address')}]:{h.get('port')}", None, True),
             run.fact("on the router", f"opened via {h.get('via') or '?'}", at, "good")]
    if at and lease:
        facts.append(Fact("lease ends", "", at + lease, run.running,
                          "" if run.running else "the service is not running: nothing renews it"))
    return Card(f"Pinhole {h.get('name')} (IPv6)", facts, "good" if facts[1].current else "warn")


def _ddns(d: dict[str, Any], run: _Run) -> Card:
    published = d.get("published") or {}
    facts = [Fact("names", ", ".join(d.get("hostnames") or []) or "?", None, True, f"provider {d.get('provider')}")]
    level = "bad" if d.get("stopped") else "good" if published else "warn"
    facts.append(run.fact("published", ", ".join(str(v) for v in published.values()) or "nothing yet",
                          d.get("last_success"), level))
    facts += _authoritative(d, published, run)
    outcome = str(d.get("outcome") or "none yet")
    facts.append(run.fact("last attempt", f"{outcome}: {d.get('message') or ''}".rstrip(": "), d.get("last_attempt"),
                          "bad" if d.get("stopped") else "info"))
    if d.get("stopped"):
        facts.append(Fact("stopped", str(d.get("hint") or ""), None, True, "", "bad"))
    elif d.get("next_attempt"):
        facts.append(Fact("next attempt", "", _num(d["next_attempt"]), run.running,
                          "" if run.running else "the service is not running"))
    return Card(f"DDNS {d.get('name')}", facts, level, action=str(d.get("name")))


def _authoritative(d: dict[str, Any], published: dict[str, Any], run: _Run) -> list[Fact]:
    """Per name: what the zone's authoritative server answered and when; "unverified" with why when it was not
    asked by this run, could not be asked, or answers something else than what was published."""
    kept = d.get("authoritative") if isinstance(d.get("authoritative"), dict) else {}
    names = list(d.get("hostnames") or []) or ["?"]
    facts = []
    for h in names:
        label = "authoritative answer" + (f" ({h})" if len(names) > 1 else "")
        a = kept.get(h)
        if not isinstance(a, dict):
            why = ("not asked: verify = false for this entry" if d.get("verify") is False else
                   "not asked yet: the DDNS round asks the zone's server when verify = true; `natlink doctor` asks it")
            facts.append(Fact(label, "", None, False, why, "warn"))
            continue
        if a.get("problem"):
            facts.append(Fact(label, "", _num(a.get("at")), False, f"could not be asked: {a['problem']}", "warn"))
            continue
        answered = a.get("addresses") if isinstance(a.get("addresses"), dict) else {}
        mine = a.get("published") if isinstance(a.get("published"), dict) else published
        differs = [f for f, ips in answered.items() if f in mine and list(ips) != [mine[f]]]
        shown = ", ".join(ip for ips in answered.values() for ip in ips) or "no record"
        where = f"from {a['server']}" if a.get("server") else ""
        why = f"differs from what was published ({', '.join(str(mine[f]) for f in differs)})" if differs else where
        facts.append(run.fact(label, shown, a.get("at"), "bad" if differs else "good", why))
    return facts


def _probes(probe: dict[str, Any], run: _Run) -> list[Card]:
    checked = probe.get("checked_at")
    cards = []
    for r in probe.get("results") or []:
        if not isinstance(r, dict):
            continue
        ok = bool(r.get("ok"))
        identity = str(r.get("identity") or "unproven")
        proved = identity in ("nonce", "greeting", "listener")
        verdict, detail = str(r.get("verdict")), str(r.get("detail") or "")
        shown = detail if detail.startswith(verdict) else f"{verdict}: {detail}".rstrip(": ")
        facts = [run.fact("verdict", shown, checked, "good" if ok else "bad"),
                 run.fact("this host?", IDENTITY_WORDS.get(identity, identity), checked,
                          "good" if proved else "bad" if identity in ("mismatch", "other-host") else "warn")]
        cards.append(Card(f"Probe {r.get('name')} {r.get('target')} ({r.get('family')})", facts,
                          "good" if ok and facts[0].current else "bad" if not ok else "warn"))
    if not cards:
        cards.append(Card("Probe", [run.fact("verdict", "no result yet", None, "warn", "no probe has run")], "warn"))
    return cards
