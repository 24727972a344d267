"""Public IP detection: ask every configured source at once, keep only plausible public answers,
publish nothing when they disagree, and say what the router's WAN address means.

    from natlink.publicip import detect
    report = detect(cfg, router=None)   # -> PublicIpReport
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from natlink.publicip.sources import RouterLike, query_echo, query_interface, query_router
from natlink.publicip.verdict import SourceAnswer, agree, screen, verdict

__all__ = ["PublicIpReport", "SourceAnswer", "detect"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublicIpReport:
    public_ipv4: str | None
    public_ipv6: str | None
    router_wan_ipv4: str | None
    verdict: str  # "public" | "cgnat" | "double-nat" | "unknown"
    sources: tuple[SourceAnswer, ...] = ()
    problem: str | None = None  # why no address / why mappings cannot work; None when all is well
    router_answered: bool = False
    ipv6_problem: str | None = None
    checked_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"public_ipv4": self.public_ipv4, "public_ipv6": self.public_ipv6,
                "router_wan_ipv4": self.router_wan_ipv4, "verdict": self.verdict, "problem": self.problem,
                "ipv6_problem": self.ipv6_problem, "checked_at": round(self.checked_at, 3),
                "sources": [s.to_json() for s in self.sources]}


# One source's question: (its answer, whether a router answered at all — only the router source can say yes).
Task = Callable[[], tuple[SourceAnswer, bool]]


def _default_opener(store: Any) -> Callable[[Any], RouterLike]:
    def open_with_cache(router_cfg: Any) -> RouterLike:
        from natlink.portmap.session import RouterSession

        return RouterSession(router_cfg, store)  # the store's cached IGD URL spares an SSDP search

    return open_with_cache


def detect(cfg: Any, router: RouterLike | None = None,
           open_router: Callable[[Any], RouterLike] | None = None, store: Any = None) -> PublicIpReport:
    """Query all sources of cfg.public_ip concurrently and judge the answers.

    router: an already open Router (the service passes its own); otherwise one is opened (with ``store``'s
    cached router facts, when given) and closed here.
    A failed detection returns None addresses; callers must then leave DNS records alone.
    """
    pcfg = cfg.public_ip
    timeout = float(pcfg.timeout)
    tasks: list[tuple[str, Task]] = []
    for src in pcfg.sources:
        if src == "router":
            tasks.append(("router", lambda: query_router(router, open_router or _default_opener(store), cfg.router)))
        elif src.startswith("interface:"):
            name = src.split(":", 1)[1]
            tasks.append((src, lambda name=name: (query_interface(name, 4), False)))
            if pcfg.ipv6:
                tasks.append((src + "#6", lambda name=name: (query_interface(name, 6), False)))
        else:
            tasks.append((src, lambda url=src: (query_echo(url, 4, timeout), False)))
            if pcfg.ipv6:
                tasks.append((src + "#6", lambda url=src: (query_echo(url, 6, timeout), False)))
    if pcfg.ipv6 and not any(s.startswith("interface:") for s in pcfg.sources):
        tasks.append(("host#6", lambda: (query_interface(None, 6), False)))

    budget = timeout + (float(cfg.router.timeout) if "router" in pcfg.sources else 0.0) + 1.0
    results = _run_all(tasks, budget)
    answers = [answer for _, (answer, _) in results]
    router_answered = any(answered for _, (_, answered) in results)
    return judge(answers, router_answered, pcfg.quorum)


def _run_all(tasks: list[tuple[str, Task]], budget: float) -> list[tuple[str, tuple[SourceAnswer, bool]]]:
    if not tasks:
        return []
    pool = cf.ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="publicip")
    futures = {pool.submit(fn): label for label, fn in tasks}
    done, _ = cf.wait(futures, timeout=budget)
    out: list[tuple[str, tuple[SourceAnswer, bool]]] = []
    for fut, label in futures.items():
        source = label.split("#")[0]
        family = 6 if label.endswith("#6") else 4
        if fut in done:
            try:
                out.append((label, fut.result()))
                continue
            except Exception as exc:  # a bug in one source must not hide the others
                log.debug("source %s failed", source, exc_info=True)
                answer = SourceAnswer(source, _kind(source), family, error=f"failed: {exc.__class__.__name__}")
        else:
            answer = SourceAnswer(source, _kind(source), family, error=f"no answer within {budget:g}s",
                                  elapsed=budget)
        out.append((label, (answer, False)))
    pool.shutdown(wait=False, cancel_futures=True)
    return out


def _kind(source: str) -> str:
    return "router" if source == "router" else "interface" if source.startswith(("interface:", "host")) else "echo"


def judge(answers: list[SourceAnswer], router_answered: bool, quorum: int = 0) -> PublicIpReport:
    """Pure: turn the sources' answers into a report (separate from detect so tests can feed tables)."""
    router = next((a for a in answers if a.kind == "router"), None)
    router_wan = router.address if router is not None else None
    v4 = [a for a in answers if a.family == 4]
    v6 = [a for a in answers if a.family == 6]

    agreement4 = agree(v4, quorum)
    v6_problem = None
    public_v6 = None
    screened6: tuple[SourceAnswer, ...] = ()
    if v6:
        local = [a for a in v6 if a.kind == "interface"]
        if any(screen(a).accepted for a in local):
            # Outbound IPv6 often uses a temporary privacy address, so an echo service would see a different
            # (short-lived) address than the stable one a server must publish: the local stable one wins.
            a6 = agree(local, quorum)
            others = tuple(screen(a) for a in v6 if a.kind != "interface")
            screened6 = a6.answers + tuple(
                SourceAnswer(**{**o.__dict__, "accepted": False,
                                "note": "not counted: the host's stable global address is used for IPv6"})
                for o in others)
        else:
            a6 = agree(v6, quorum)
            screened6 = a6.answers
        public_v6, v6_problem = a6.address, a6.problem

    screened4 = agreement4.answers
    # Only echo answers: a local interface in 100.64/10 (e.g. a Tailscale tunnel) says nothing about the ISP.
    rejected = tuple(a.address for a in screened4 if a.kind == "echo" and a.address and not a.accepted)
    host_public = any(a.kind == "interface" and a.accepted and a.address == agreement4.address for a in screened4)
    v = verdict(router_answered, router_wan, agreement4.address, host_public, rejected)
    problem = agreement4.problem if agreement4.address is None else None
    if v.problem:
        problem = v.problem if problem is None else f"{problem}; {v.problem}"
    # The router's own answer counts as evidence of the public IP only when it is public; keep its
    # address visible either way (it is the WAN address).
    return PublicIpReport(public_ipv4=agreement4.address, public_ipv6=public_v6, router_wan_ipv4=router_wan,
                          verdict=v.verdict, sources=screened4 + screened6, problem=problem,
                          router_answered=router_answered, ipv6_problem=v6_problem)
