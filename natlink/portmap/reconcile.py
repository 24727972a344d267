"""Make the router match the config: read its state, plan (pure), apply, re-read to confirm, record.

Also `unmap`: delete only entries that are natlink's and point at this host.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from natlink.config import Config
from natlink.errors import NatlinkError
from natlink.netaddr import explain_wan
from natlink.portmap import lanip
from natlink.portmap.base import AddRequest, Granted, Mapping, MappingError, outcome, owner_description
from natlink.portmap.granted import granted_mismatch, other_host_refusal
from natlink.portmap.plan import (ADD, CONFLICT, DELETE, KEEP, RENEW, REPLACE, REQUESTS, VERIFY, Desired, Owned,
                                  Plan, Step, owned_name, plan, renew_time)
from natlink.portmap.router import Router, save_cache
from natlink.portmap.session import RouterSession

log = logging.getLogger(__name__)

STATE_KEY = "mappings"
PERMANENT_RETRY_CODES = (725, 402)  # OnlyPermanentLeasesSupported; some routers say Invalid Args instead


@dataclass
class Action:
    """What happened to one plan step."""

    step: Step
    ok: bool
    detail: str = ""
    error: MappingError | None = None
    external_port: int | None = None
    lease: int | None = None  # granted; 0 = permanent
    elapsed: float = 0.0

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def changed(self) -> bool:
        """It changed the router's table: a change step, or a re-request that got another external port."""
        moved = self.action == VERIFY and self.step.want is not None and self.external_port not in (
            None, self.step.want.external_port)
        return self.ok and (self.step.changes or moved)

    @property
    def action(self) -> str:
        return self.step.action

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "ok": self.ok, "detail": self.detail,
                "external_port": self.external_port, "lease": self.lease,
                "error": self.error.to_json() if self.error else None, "elapsed": round(self.elapsed, 4)}


@dataclass
class ReconcileReport:
    """What one reconcile planned, did and saw (`natlink map` prints it, the service schedules from it)."""

    plan: Plan
    actions: list[Action] = field(default_factory=list)
    wan_problem: str | None = None
    router: Router | None = None
    external_ip: str | None = None
    dry_run: bool = False
    epoch_lost: bool = False
    dhcp_warning: str | None = None
    next_renewal: float | None = None  # seconds until the earliest renewal is due (for the service's schedule)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        if self.wan_problem:
            return False
        if self.dry_run:
            return not self.plan.of(CONFLICT)
        return all(a.ok for a in self.actions)

    @property
    def changed(self) -> bool:
        return any(a.changed for a in self.actions)

    @property
    def errors(self) -> list[Action]:
        return [a for a in self.actions if not a.ok]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "dry_run": self.dry_run, "wan_problem": self.wan_problem,
                "external_ip": self.external_ip, "router": self.router.to_json() if self.router else None,
                "epoch_lost": self.epoch_lost, "dhcp_warning": self.dhcp_warning,
                "plan": self.plan.to_json(), "actions": [a.to_json() for a in self.actions],
                "next_renewal": None if self.next_renewal is None else round(self.next_renewal, 1),
                "elapsed": round(self.elapsed, 4)}


# --------------------------------------------------------------------------- state


def load_owned(store: Any) -> dict[str, Owned]:
    raw = store.load(STATE_KEY, {}) if store is not None else {}
    out: dict[str, Owned] = {}
    for name, data in (raw or {}).items():
        rec = Owned.from_json(data) if isinstance(data, dict) else None
        if rec is not None:
            out[name] = rec
    return out


def save_owned(store: Any, owned: dict[str, Owned]) -> None:
    if store is not None:
        store.save(STATE_KEY, {name: rec.to_json() for name, rec in sorted(owned.items())})


def desired_mappings(cfg: Config, lan_ip: str) -> list[Desired]:
    return [Desired(m.protocol, m.external_port, m.internal_ip or lan_ip, m.internal_port, name=m.name,
                    description=owner_description(m.name, m.description), lease=m.lease,
                    allow_other_port=m.allow_other_port) for m in cfg.mappings]


def dhcp_warning(router: Router) -> str | None:
    dynamic = lanip.looks_dhcp(router.lan_ip)
    if dynamic:
        return (f"{router.lan_ip} looks DHCP-assigned (it has a lease lifetime): the mappings break when the lease "
                "hands this host another address; give it a fixed address or a DHCP reservation on the router")
    return None


# --------------------------------------------------------------------------- reconcile


def reconcile(cfg: Config, store: Any, dry_run: bool = False, router: Router | None = None, *,
              session: RouterSession | None = None, force_renew: bool = False) -> ReconcileReport:
    """Bring the router's mappings in line with cfg.mappings. Never raises for a refused mapping: each step's
    outcome is in .actions; raises NatlinkError only when the router cannot be reached at all.

    session: the caller's RouterSession (the service's round); without one (and without an open ``router``)
    a session is opened for this call. force_renew: re-request every natlink mapping that would otherwise be
    kept (see plan.plan)."""
    started = time.monotonic()
    if router is not None:
        report = _reconcile(cfg, store, router, dry_run, force_renew)
    else:
        own = session is None
        use = session or RouterSession.for_config(cfg, store)
        started = min(started, use.opening_since or started)  # the router's opening, begun for this call, counts
        try:
            report = use.run(lambda r: _reconcile(cfg, store, r, dry_run, force_renew))
        finally:
            if own:
                use.close()
    report.elapsed = time.monotonic() - started
    return report


def _reconcile(cfg: Config, store: Any, router: Router, dry_run: bool, force_renew: bool) -> ReconcileReport:
    owned = load_owned(store)
    desired = desired_mappings(cfg, router.lan_ip)
    # The WAN address first: behind CGNAT/double NAT nothing may be added (and nothing left behind), so there
    # is nothing to plan either (an empty plan, not one that looks as if it would be applied).
    external = router.external_ip()
    problem = explain_wan(external)
    if problem:
        return ReconcileReport(plan=Plan(), wan_problem=problem, router=router, external_ip=external,
                               dry_run=dry_run, epoch_lost=router.epoch_dropped)
    actual = router.list() if router.can_list else None
    now = time.time()
    the_plan = plan(desired, actual, owned, self_ip=router.lan_ip, mapper=router.mapper, now=now, epoch=router.epoch,
                    force_renew=force_renew, seen=_seen_over_upnp(router) if actual is None else None)
    report = ReconcileReport(plan=the_plan, wan_problem=problem, router=router, external_ip=external,
                             dry_run=dry_run, epoch_lost=router.epoch_dropped or the_plan.epoch_lost)
    dhcp_check: list[str | None] = []
    checker: threading.Thread | None = None
    if router.lan_ip_source == "auto" and (dry_run or the_plan.changes):  # `ip addr` costs a fork: only when it matters
        # in a thread, so the fork + exec overlaps the router's work instead of adding to it
        checker = threading.Thread(target=lambda: dhcp_check.append(dhcp_warning(router)), daemon=True)
        checker.start()
    if dry_run:
        report.dhcp_warning = _joined(checker, dhcp_check)
        return report

    granted_ports: dict[str, int] = {}
    t0 = time.monotonic()
    answers = _pipelined(the_plan.steps, router, owned)
    share = (time.monotonic() - t0) / len(answers) if answers else 0.0  # each pipelined step's part of the wait
    for i, step in enumerate(the_plan.steps):
        t0 = time.monotonic()
        action = _apply(step, router, owned, now, answers.get(i))
        action.elapsed = time.monotonic() - t0 + (share if i in answers else 0.0)
        report.actions.append(action)
        if action.ok and action.external_port:
            granted_ports[step.name] = action.external_port

    if router.can_list and any(a.ok and a.action in REQUESTS for a in report.actions):
        _confirm(router, report)
    report.dhcp_warning = _joined(checker, dhcp_check)
    if store is not None and router.epoch is not None:
        save_cache(store, router, store.load("router", {}) if store is not None else None,
                   remember_mapper=False)
    save_owned(store, owned)
    report.next_renewal = _next_renewal(owned, time.time())
    return report


def _seen_over_upnp(router: Router) -> list[Mapping] | None:
    """NAT-PMP/PCP in use: the table over UPnP when UPnP answered discovery too (one read verifies every
    mapping); None otherwise, and each mapping is asked for again."""
    if router.upnp_url is None:
        return None
    try:
        return router.table()
    except NatlinkError as exc:
        log.debug("table over UPnP unavailable: %s", exc.message)
        return None


def _joined(checker: threading.Thread | None, result: list[str | None]) -> str | None:
    if checker is None:
        return None
    checker.join(3.0)  # `ip addr` has a 2 s timeout of its own
    return result[0] if result else None


def _request(step: Step, router: Router, owned: dict[str, Owned]) -> AddRequest:
    """The add an ADD/RENEW/REPLACE/VERIFY step sends: a renewal or re-request reuses the PCP nonce natlink
    holds for this protocol; a router that accepts only permanent leases gets lease 0."""
    assert step.want is not None
    rec = owned.get(step.name)
    lease = 0 if rec is not None and rec.permanent_only else step.want.lease or 0
    same = rec is not None and rec.mapper == router.mapper and step.action in (RENEW, VERIFY)
    return AddRequest(step.want, lease, step.any_port, rec.nonce if same else None)


def _pipelined(steps: list[Step], router: Router, owned: dict[str, Owned]) -> dict[int, Granted | NatlinkError]:
    """NAT-PMP/PCP: the steps' map requests sent at once (the router then works through them back to back);
    {step index: its answer} for _apply to use instead of asking again."""
    if not router.pipelines:
        return {}
    picked = [i for i, step in enumerate(steps) if step.action in (ADD, RENEW, VERIFY) and step.want is not None
              and other_host_refusal(router.mapper, step.want, router.lan_ip) is None]
    if len(picked) < 2:
        return {}
    return dict(zip(picked, router.add_many([_request(steps[i], router, owned) for i in picked])))


def _apply(step: Step, router: Router, owned: dict[str, Owned], now: float,
           answer: Granted | NatlinkError | None = None) -> Action:
    """Carry out one step; ``answer``: the router's answer to its request when it went out pipelined."""
    if step.action == KEEP:
        port = step.have.external_port if step.have else None
        if step.have is not None and step.name not in owned and not step.foreign:
            # in the table with our description but not in our records (state lost): adopt it again
            have = step.have
            owned[step.name] = Owned(have.protocol, have.external_port, have.internal_ip, have.internal_port,
                                     name=step.name, mapper=router.mapper, lease=have.lease or 0, granted_at=now,
                                     renew_at=renew_time(now, have.lease or 0), epoch=router.epoch,
                                     gateway=router.gateway)
        return Action(step, True, step.reason, external_port=port,
                      lease=step.have.lease if step.have else None)
    if step.action == CONFLICT:
        assert step.want is not None
        err = MappingError(718, step.reason, "free the port on the router, choose another external_port, or set "
                                             "allow_other_port = true", mapper=router.mapper)
        return Action(step, False, step.reason, error=err)
    try:
        if step.action in (DELETE, REPLACE) and step.have is not None:
            rec = owned.get(step.name)
            if rec is None or rec.mapper == router.mapper or router.can_list:
                router.delete(step.have, nonce=rec.nonce if rec else None)
            if step.action == DELETE:
                owned.pop(step.name, None)
                return Action(step, True, f"deleted ({step.reason})", external_port=step.have.external_port)
        assert step.want is not None
        req = _request(step, router, owned)
        lease, nonce = req.lease, req.nonce
        permanent_only = False
        refusal = other_host_refusal(router.mapper, step.want, router.lan_ip)
        if refusal is not None:
            raise refusal
        try:
            granted = outcome(answer) if answer is not None else router.add(step.want, lease, any_port=step.any_port,
                                                                             nonce=nonce)
        except MappingError as exc:
            if exc.code not in PERMANENT_RETRY_CODES or lease == 0 or router.mapper != "upnp":
                raise
            log.info("%s: the router refused lease %d s (%s); retrying with a permanent lease", step.name, lease, exc)
            granted = router.add(step.want, 0, any_port=step.any_port, nonce=nonce)
            permanent_only = True
        mismatch = granted_mismatch(router.mapper, step.want, granted)
        if mismatch is not None:
            _take_back(router, step.want, granted)
            raise mismatch
        want = step.want
        owned[step.name] = Owned(want.protocol, granted.external_port, want.internal_ip, want.internal_port,
                                 name=step.name, mapper=router.mapper, lease=granted.lease, granted_at=now,
                                 renew_at=renew_time(now, granted.lease), epoch=router.epoch,
                                 nonce=granted.nonce or nonce, permanent_only=permanent_only,
                                 gateway=router.gateway)
        lease_txt = "permanent lease (the router accepts no other)" if permanent_only else (
            "permanent" if granted.lease == 0 else f"lease {granted.lease} s")
        port_txt = (f", the router gave external port {granted.external_port}"
                    if granted.external_port != step.want.external_port else "")
        verb = "the router confirmed it" if step.action == VERIFY and not port_txt else step.action
        return Action(step, True, f"{verb}: {lease_txt}{port_txt}", external_port=granted.external_port,
                      lease=granted.lease)
    except MappingError as exc:
        exc.name = step.name
        return Action(step, False, exc.message, error=exc)
    except NatlinkError as exc:  # the router stopped answering mid-way
        err = MappingError(None, exc.message, exc.hint or "run natlink map again", mapper=router.mapper)
        return Action(step, False, exc.message, error=err)


def _take_back(router: Router, want: Mapping, granted: Granted) -> None:
    """Best effort: remove a mapping the router made somewhere else than asked (nobody configured it)."""
    made = Mapping(want.protocol, granted.external_port, granted.internal_ip or want.internal_ip,
                   granted.internal_port or want.internal_port)
    try:
        router.delete(made, nonce=granted.nonce)
    except NatlinkError as exc:
        log.warning("could not remove the misdirected mapping %s %s: %s", made.protocol, made.external_port,
                    exc.message)


def _confirm(router: Router, report: ReconcileReport) -> None:
    """Re-read the table: a router may say yes and not keep the entry (seen with full tables and bad firmware)."""
    changed = [a for a in report.actions if a.ok and a.action in REQUESTS and a.step.want is not None]
    get = getattr(router.client, "get", None)
    table: dict[tuple[str, int], Mapping] | None = None
    # One table read (IGD v2: one call per protocol) beats a call per changed entry; walking a v1 table entry
    # by entry only pays off for more than a few changes.
    whole_table = 1 if getattr(router.client, "lists_in_one_call", False) else 3
    if get is None or len(changed) > whole_table:
        try:
            table = {m.key: m for m in router.list() or []}
        except MappingError as exc:
            log.warning("could not re-read the router's table to confirm: %s", exc)
            return
    for a in changed:
        assert a.step.want is not None
        key = (a.step.want.protocol, a.external_port or a.step.want.external_port)
        entry = table.get(key) if table is not None else get(*key)
        if entry is None or not entry.same_target(a.step.want):
            a.ok = False
            seen = "is not in its table" if entry is None else \
                f"its table shows {entry.internal_ip}:{entry.internal_port} instead"
            a.error = MappingError(None, f"the router ({router.describe()}) answered success, but read back "
                                         f"{seen}", "the router may be out of resources or ignore UPnP changes; "
                                   "reboot it or try NAT-PMP/PCP (router.protocols)", mapper="upnp")
            a.detail = a.error.message


def _next_renewal(owned: dict[str, Owned], now: float) -> float | None:
    times = [rec.renew_at for rec in owned.values() if rec.renew_at is not None]
    return max(0.0, min(times) - now) if times else None


# --------------------------------------------------------------------------- unmap


def unmap(cfg: Config, store: Any, names: list[str] | None = None, router: Router | None = None, *,
          session: RouterSession | None = None) -> list[Action]:
    """Delete natlink's own mappings (all, or ``names``) that point at this host; never anyone else's."""
    if router is not None:
        return _unmap(store, names, router)
    own = session is None
    use = session or RouterSession.for_config(cfg, store)
    try:
        return use.run(lambda r: _unmap(store, names, r))
    finally:
        if own:
            use.close()


def _unmap(store: Any, names: list[str] | None, router: Router) -> list[Action]:
    owned = load_owned(store)
    wanted = set(names) if names else None
    steps: list[Step] = []
    if router.can_list:
        for m in router.list() or []:
            name = owned_name(m, owned, router.lan_ip)
            if name is None or (wanted is not None and name not in wanted):
                continue
            steps.append(Step(DELETE, name, None, m, "unmap"))
    else:
        for name, rec in sorted(owned.items()):
            if (wanted is None or name in wanted) and rec.mapper == router.mapper:
                steps.append(Step(DELETE, name, None, rec.mapping(), "unmap"))
    actions = []
    for step in steps:
        t0 = time.monotonic()
        action = _apply(step, router, owned, time.time())
        action.elapsed = time.monotonic() - t0
        actions.append(action)
    for name in list(owned):  # records whose entries are already gone
        if wanted is None or name in wanted:
            if not any(s.name == name for s in steps) and (router.can_list or owned[name].mapper != router.mapper):
                owned.pop(name)
    save_owned(store, owned)
    return actions
