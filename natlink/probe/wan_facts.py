"""What a probe run learnt of the router (its WAN address, its table) and the sentences that follow from it.

natlink states as fact only what it saw in this run: a router that never answered leaves the WAN address
unverified, and a CGNAT sentence says whether a dial-back was attempted.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from natlink.errors import NatlinkError
from natlink.netaddr import AddrKind, classify, explain_wan

log = logging.getLogger(__name__)


@dataclass
class RouterAnswers:
    """What the router answered in this probe run (None / False / None: nothing heard yet)."""

    wan_ip: str | None = None  # "" = the router says it has none
    answered: bool = False
    table: list[Any] | None = None  # natlink.portmap.base.Mapping entries


@dataclass
class RouterAsks:
    """A probe run's questions to the router, asked in the background; None: not asked."""

    wan: Future[RouterAnswers] | None = None
    table: Future[list[Any] | None] | None = None


def ask_router(cfg: Any, router: Any, *, wan: bool, table: bool) -> RouterAsks:
    """Ask the router for its WAN address and/or its table, through the caller's router session (or open Router);
    without one, through a session opened for this run and closed once its last answer is in (the table read
    may outlive the probe run)."""
    if not (wan or table):
        return RouterAsks()
    own = None
    if router is None:
        from natlink.portmap.session import RouterSession

        router = own = RouterSession.for_config(cfg)
    asks = RouterAsks(_background(router_wan, router) if wan else None,
                      _background(router_table, router) if table else None)
    if own is not None:
        calls = [f for f in (asks.wan, asks.table) if f is not None]
        for f in calls:
            f.add_done_callback(lambda _f: own.close() if all(c.done() for c in calls) else None)
    return asks


def _background(fn: Any, *args: Any) -> Future[Any]:
    """Run fn in a daemon thread. The router's table only sharpens diagnoses: a router that never answers must
    not hold the process at exit (executor threads are joined at exit: that cost ~2 s per `natlink probe`)."""
    fut: Future[Any] = Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever reads the future
            fut.set_exception(exc)

    threading.Thread(target=run, name="probe-router", daemon=True).start()
    return fut


def router_wan(router: Any) -> RouterAnswers:
    """The router's external address, through the caller's router session. Never raises."""
    try:
        wan = router.external_ip()
        return RouterAnswers(wan if wan is not None else "", True)
    except (ImportError, NatlinkError, OSError) as exc:
        log.debug("router WAN address unavailable: %s", exc)
        return RouterAnswers()


def router_table(router: Any) -> list[Any] | None:
    """The router's mapping table read now (over UPnP whenever it answered discovery); None when unavailable."""
    try:
        return router.table()
    except Exception as exc:  # a table we cannot read only weakens the diagnosis
        log.debug("router table unavailable: %s", exc)
        return None


def forwarding(answers: RouterAnswers | None, t: Any) -> tuple[bool | None, str | None]:
    """(router forwards this port here?, "ip:port" it forwards to when that is somewhere else)."""
    if answers is None or answers.table is None:
        return None, None
    entry = next((m for m in answers.table if m.protocol == t.protocol and m.external_port == t.external_port), None)
    if entry is None:
        return False, None
    if t.internal_ip is None:
        return True, None
    if entry.internal_ip == t.internal_ip and entry.internal_port == t.internal_port:
        return True, None
    return False, f"{entry.internal_ip}:{entry.internal_port}"


def wan_sentences(report: Any, answers: RouterAnswers | None) -> tuple[str | None, str | None]:
    """(cgnat problem, double-NAT note) from a PublicIpReport and/or the router's own WAN address; the cgnat
    sentence without the part saying whether a dial-back was attempted (the caller knows)."""
    verdict = getattr(report, "verdict", None) if report is not None else None
    wan = getattr(report, "router_wan_ipv4", None) if report is not None else None
    if wan is None and answers is not None and answers.answered:
        wan = answers.wan_ip  # "" when the router says it has no external address (miniupnpd behind CGNAT)
    kind = classify(wan) if wan is not None else None
    hopeless = (AddrKind.CGNAT, AddrKind.RESERVED, AddrKind.INVALID)
    if verdict == "cgnat" or kind in hopeless:
        problem = (explain_wan(wan) if kind in hopeless else None) or getattr(report, "problem", None) or \
            "your ISP uses carrier-grade NAT: port mappings cannot be reached from the internet"
        return problem, None
    if verdict == "double-nat" or kind is AddrKind.PRIVATE:
        return None, (explain_wan(wan) if kind is AddrKind.PRIVATE else None) or \
            "another NAT is in front of your router (double NAT): map the port there too"
    return None, None


@dataclass(frozen=True)
class WanView:
    """What this run learnt of the router's WAN address, and when relative to the dial-back."""

    cgnat: str | None = None
    double_nat: str | None = None
    unverified: str | None = None  # set when the router never answered: why the WAN address is unverified


def wan_view(report: Any, answers: RouterAnswers | None, asked: bool) -> WanView:
    cgnat, double_nat = wan_sentences(report, answers)
    if report is None and asked and (answers is None or not answers.answered):
        why = "the router had not answered yet" if answers is None else "the router did not answer"
        return WanView(unverified=f"the router's WAN address is unverified ({why}), so CGNAT is neither "
                                  "confirmed nor ruled out; `natlink ip` checks it")
    return WanView(cgnat, double_nat)


def router_answer(wan_f: Future[RouterAnswers] | None, wait: float | None) -> RouterAnswers | None:
    """The router's answer when it came within `wait` seconds (None: until the router's own timeout)."""
    if wan_f is None:
        return None
    try:
        return wan_f.result(timeout=wait)
    except TimeoutError:
        return None


def cgnat_sentence(cgnat: str | None, dialled: bool, outcome: str) -> str | None:
    """The CGNAT sentence saying truthfully whether this target was dialled. A router that said CGNAT only after
    the dial-back started does not outvote a dial-back that reached this host."""
    if not cgnat:
        return None
    if not dialled:
        return cgnat + " (no outside dial-back was attempted)"
    if outcome == "open":
        return None
    return f"{cgnat} (the router said so after the outside dial-back had started; it got: {outcome})"


