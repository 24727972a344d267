"""Probe every target from outside, concurrently, and judge each one.

Per target: (A) look inside (inside.py) — listen on the free internal port with a nonce, or read what the running
service says first; (B) ask the outside (outside.py: reflector / echoip) or dial the public address (hairpin);
(C) turn the observations into verdicts (verdicts.py) and compare targets with each other. The targets themselves
come from targets.py, the router's answers from wan_facts.py.
"""

from __future__ import annotations

import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Iterable

from natlink.config import Config
from natlink.netaddr import AddrKind, classify, explain_wan
from natlink.probe.httpcall import CheckerError, families
from natlink.probe.inside import InsideView, inside_views, read_len
from natlink.probe.nonce_listener import NonceHub
from natlink.probe.outside import Outside, TargetCheck, dial_port, run_outside
from natlink.probe.targets import (
    InsideKey,
    Target,
    inside_key,
    ipv6_targets,
    is_ip,
    probe_secret,
    resolve,
    resolve_auto,
    resolve_targets,
)
from natlink.probe.verdicts import Inside, Observation, TargetVerdict, Verdict, cross_check, exit_code, result_from
from natlink.probe.wan_facts import (
    RouterAnswers,
    WanView,
    ask_router,
    cgnat_sentence,
    forwarding,
    router_answer,
    wan_sentences,
    wan_view,
)

# A router on the LAN answers its WAN address in milliseconds: it gets this head start so a CGNAT line is found
# before anything is dialled; one slower than this (or absent) no longer delays the dial-back.
ROUTER_HEAD_START = 0.3

__all__ = ["probe_all", "results_to_state"]


def probe_all(cfg: Config, targets: Iterable[str] | list[Target] | None = None, report: Any = None, *,
              listen: bool = True, router: Any = None) -> list[TargetVerdict]:
    """Probe every target concurrently; a whole run takes about as long as its slowest target.

    targets: names of [[probe]]s / mappings, "host:port" strings, or Target objects (None: every [[probe]]).
    report: a natlink.publicip PublicIpReport; when it says CGNAT every IPv4 target is `cgnat` and nothing
      is dialled. Without a report the router is asked for its WAN address (and its mapping table).
    listen: let natlink listen on free internal ports with a nonce (proves identity).
    router: the caller's RouterSession (or open Router); without one a session is opened for this run only.
    """
    started = time.monotonic()
    items = list(targets) if targets is not None else None
    tlist = items if items and all(isinstance(t, Target) for t in items) else resolve_targets(cfg, items)  # type: ignore[arg-type]
    tokens = {t.probe.name: probe_secret(t.probe) for t in tlist}
    workers = max(4, min(64, 3 * len(tlist)))
    asks = ask_router(cfg, router, wan=report is None, table=any(t.mapping for t in tlist))
    wan_f, table_f = asks.wan, asks.table
    budget_end = started + max((t.probe.timeout for t in tlist), default=3.0)
    hub = NonceHub()  # one thread answers every nonce listener of this run
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        tlist = [resolve_auto(t) for t in tlist]
        six = ipv6_targets(cfg, tlist)
        views = inside_views(pool, tlist + list(six.values()), listen, hub)
        # A hairpin dial needs the router's address; otherwise the router gets a head start (a CGNAT answer
        # then skips the dial) and the dial-back does not wait for a router that is slow or absent.
        answers = router_answer(wan_f, None if _needs_wan(tlist) else ROUTER_HEAD_START)
        cgnat = wan_sentences(report, answers)[0]
        try:
            jobs = _checks(cfg, tlist, report, answers, views, six, bool(cgnat))
            runnable = [j for j in jobs if not (cgnat and j.family == "ipv4" and j.target.via != "hairpin")]
            for j in runnable:
                j.dialled = True
            run_outside(pool, runnable, tokens)
        finally:
            hub.close()  # every listener stops answering at once; each then counts its queue and closes
            for view in views.values():
                if view.listener is not None:
                    view.listener.stop()
    needs_table = any(j.outside.outcome != "open" for j in jobs)
    if answers is None and wan_f is not None and (needs_table or wan_f.done()):
        # A failure may be explained by CGNAT: the router's late answer is waited for within the time budget.
        answers = router_answer(wan_f, max(0.0, budget_end - time.monotonic()))
    wan = wan_view(report, answers, wan_f is not None)
    # Failures get the router's table for a sharper sentence (within the probe's time budget); successes don't wait.
    if table_f is not None and (needs_table or table_f.done()):
        try:
            table = table_f.result(timeout=max(0.0, budget_end - time.monotonic()))
        except TimeoutError:
            table = None
        answers = replace(answers, table=table) if answers is not None else RouterAnswers(table=table)
    results = [_judge(j, views, answers, wan, started) for j in jobs]
    return cross_check(results)


def _needs_wan(tlist: list[Target]) -> bool:
    """A hairpin target without an IP address dials the router's WAN address: it must wait for the router."""
    return any(t.via == "hairpin" and not (t.host and is_ip(t.host)) for t in tlist)


def _checks(cfg: Config, tlist: list[Target], report: Any, answers: RouterAnswers | None,
            views: dict[InsideKey, InsideView], six: dict[str, Target] | None = None,
            cgnat: bool = False) -> list[TargetCheck]:
    """One check per target and IP family (hairpin: the family of the address it dials)."""
    jobs: list[TargetCheck] = []
    public4 = getattr(report, "public_ipv4", None) if report is not None else None
    if not public4 and answers is not None and answers.wan_ip and classify(answers.wan_ip) is AddrKind.PUBLIC:
        public4 = answers.wan_ip
    six = six or {}
    resolved: dict[str, dict[str, str] | CheckerError] = {}  # checker URL -> its families (resolved once)
    for t in tlist:
        read = read_len(views, t)
        if t.via == "hairpin":
            address = t.host if t.host and is_ip(t.host) else public4
            if t.host and not is_ip(t.host):
                address = resolve(t.host, "ipv4") or public4
            fam = "ipv6" if address and ":" in address else "ipv4"
            jobs.append(TargetCheck(t, fam, address, read=read))
            continue
        url = t.probe.reflector if t.via == "reflector" else t.probe.echoip
        fams = resolved.get(url or "")
        if fams is None:
            try:
                fams = resolved[url or ""] = families(url or "")
            except CheckerError as exc:
                fams = resolved[url or ""] = exc
        if isinstance(fams, CheckerError):
            jobs.append(TargetCheck(t, "ipv4", public4, Outside("error", str(fams)), read))
            continue
        wanted = [f for f in ("ipv4", "ipv6") if f in fams and (f == "ipv4" or cfg.public_ip.ipv6 or t.name in six
                                                                 or (t.host is not None and ":" in t.host))]
        if t.name in six and cgnat and "ipv4" not in wanted:
            wanted.insert(0, "ipv4")  # CGNAT is the router's fact: IPv4 gets its verdict without an IPv4 reflector
        for fam in wanted or list(fams)[:1]:
            v6 = six.get(t.name) if fam == "ipv6" else None
            jobs.append(TargetCheck(t, fam, public4 if fam == "ipv4" else None,
                                    read=read_len(views, v6) if v6 else read, inside=v6))
    return jobs


def _judge(job: TargetCheck, views: dict[InsideKey, InsideView], answers: RouterAnswers | None,
           wan: WanView, started: float) -> TargetVerdict:
    t, out = job.target, job.outside
    key = inside_key(job.inside or t)
    view = views.get(key) if key and (job.family == "ipv4" or job.inside) else None
    inside = view.inside if view else Inside.UNKNOWN
    listener = view.listener if view else None
    nonce_seen = bool(listener and out.data and listener.line.strip() in out.data)
    # the router's table holds IPv4 port mappings only: it says nothing about an IPv6 pinhole
    forwards, elsewhere = forwarding(answers, t) if t.via != "hairpin" and job.family == "ipv4" else (None, None)
    seen = out.seen_as if t.via != "hairpin" else None
    wan_problem = cgnat_sentence(wan.cgnat, job.dialled, job.outside.outcome) if job.family == "ipv4" and t.via != "hairpin" else None
    if not wan_problem and seen and classify(seen) is AddrKind.CGNAT and t.via != "hairpin":
        wan_problem = explain_wan(seen)  # the outside saw us from a CGNAT address: it is not outside the CGN
    obs = Observation(
        name=t.name, via=t.via, protocol=t.protocol, family=job.family, external_port=dial_port(job),
        public_address=job.public_address,
        internal=(job.inside or t).internal, inside=inside,
        outcome=out.outcome if job.dialled else "not-tried",
        error=out.error, nonce_seen=nonce_seen,
        greeting_inside=view.greeting if view else None,
        greeting_outside=out.data if (view and view.greeting) else None,
        listener_hits=listener.hits if listener else 0, wan_problem=wan_problem, double_nat=wan.double_nat,
        router_forwards=forwards, router_forwards_to=elsewhere,
        name_mismatch=_name_mismatch(t, seen, job.family),
    )
    elapsed = (out.finished or time.monotonic()) - started
    result = result_from(obs, max(0.0, elapsed))
    extra: dict[str, Any] = {}
    if seen:
        extra["seen_as"] = seen
    if t.mapping:
        extra["mapping"] = t.mapping
    if view and view.note:
        extra["inside_note"] = view.note
    if wan.unverified and job.family == "ipv4" and t.via != "hairpin":
        extra["wan_address"] = wan.unverified
        if result.verdict in (Verdict.TIMEOUT, Verdict.UNREACHABLE):  # the failures CGNAT would also explain
            result = replace(result, detail=f"{result.detail}; {wan.unverified}")
    if out.error and result.verdict is not Verdict.CHECKER_ERROR:
        extra["error"] = out.error
    return replace(result, extra=extra) if extra else result


def _name_mismatch(t: Target, seen: str | None, family: str) -> str | None:
    if not t.host or not seen:
        return None
    if is_ip(t.host):
        if ipaddress.ip_address(t.host) != ipaddress.ip_address(seen):
            return f"{t.host} is not the address the outside sees you as ({seen}); only that one was dialled"
        return None
    resolved = resolve(t.host, family)
    if resolved is None:
        return f"{t.host} does not resolve ({family}); the outside dialled {seen}"
    if ipaddress.ip_address(resolved) != ipaddress.ip_address(seen):
        return f"{t.host} resolves to {resolved} but the outside sees you as {seen} — DDNS is stale or points elsewhere"
    return None


def results_to_state(results: list[TargetVerdict]) -> dict[str, Any]:
    """The "probe" state document (no secrets: tokens never enter results)."""
    return {"checked_at": time.time(), "ok": exit_code(results) == 0, "results": [r.to_json() for r in results]}

