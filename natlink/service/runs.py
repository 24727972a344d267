"""The four jobs of `natlink run` as the service runs them: mappings (+ IPv6 pinholes), the router poll,
public address + DDNS, probe; what each did goes to the watch (alerts), health, outcomes (metrics) and round.

A mixin of Service (natlink/service/runner.py), which owns the state these read and the schedule."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from natlink.service import jobs
from natlink.service.policy import DDNS, MAPPINGS, PROBE, RouterObservation, jobs_after_poll
from natlink.service.slots import JobResult, describe_error

log = logging.getLogger("natlink.service")


class JobRuns:
    """Service's job bodies (JobSlot calls them, one at a time per job) and what follows each run."""

    cfg: Any
    store: Any
    slots: dict[str, Any]
    round: dict[str, Any]
    once: bool
    report: Any
    health: Any
    watch: Any
    outcomes: Any
    history: Any
    notifier: Any
    _session: Any
    _last_obs: RouterObservation | None
    _renew_all: Any
    _mappings_ran: bool
    _mappings_after_ddns: str | None
    _forced_ddns: set[str]
    _forced_lock: Any
    _pinged_ok: bool | None

    def _job_mappings(self, reason: str) -> JobResult:
        # Cleared before the run so an announcement during it forces the next run too; set again when this
        # run could not renew (router unreachable, WAN down, a renewal refused). Failed adds and conflicts
        # do not need it: the next plan retries those anyway.
        force = self._renew_all.is_set()
        self._renew_all.clear()
        try:
            report = jobs.reconcile(self.cfg, self.store, self._session, force_renew=force)
        except BaseException as exc:
            if force:
                self._renew_all.set()
            self.watch.mappings({m.name: describe_error(exc) for m in self.cfg.mappings})
            self.round[MAPPINGS] = {"error": describe_error(exc)}
            raise
        if force and (report.wan_problem or any(a.action == "renew" for a in report.errors)):
            self._renew_all.set()
        actions = list(report.actions)
        self.outcomes.mappings_present = sum(1 for a in actions if a.ok and a.action != "delete")
        outcomes: dict[str, str | None] = {m.name: report.wan_problem for m in self.cfg.mappings}
        for a in actions:
            if a.action != "delete" and a.name in outcomes and not report.wan_problem:
                outcomes[a.name] = None if a.ok else (a.error.message if a.error else a.detail)
        self.watch.mappings(outcomes)
        self.round[MAPPINGS] = {"actions": [a.to_json() for a in actions], "wan_problem": report.wan_problem}
        v6 = self._pinholes()
        changed = [a for a in actions if a.ok and a.step.changes]
        for a in changed:
            log.info("mapping %s: %s", a.name, a.detail)
            if a.step.action in ("add", "replace"):
                self.history.add(f"mapping-{a.step.action}", f"mapping:{a.name}", f"mapping {a.name}: {a.detail}")
        first, self._mappings_ran = not self._mappings_ran, True
        if first or changed:
            self.trigger({PROBE}, "first mappings run" if first else "mappings changed")
        renewals = [t for t in (report.next_renewal, v6.next_renewal if v6 is not None else None) if t is not None]
        self._schedule_renewal(min(renewals) if renewals else None)
        v6_problems = v6.problems() if v6 is not None else []
        if not report.ok or v6_problems:
            problems = [report.wan_problem] if report.wan_problem else [
                f"{a.name}: {a.error.message if a.error else a.detail}" for a in report.errors]
            every6 = all(self.cfg.mapping_ipv6(m) for m in self.cfg.mappings)
            if v6 is not None and v6.ok and report.wan_problem and every6:
                problems = []  # IPv4 cannot work (CGNAT), but every mapping is open over IPv6
            problems += v6_problems
            if problems:
                return JobResult(False, "failed", "; ".join(p for p in problems if p))
        return JobResult(True, "changed" if changed else "unchanged")

    def _pinholes(self) -> Any:
        """IPv6 pinholes after the IPv4 mappings (a failure there is this job's failure, not a crash)."""
        try:
            v6 = jobs.pinholes(self.cfg, self.store, self._session)
        except Exception as exc:  # noqa: BLE001 - reported like a refused pinhole
            log.error("IPv6 pinholes: %s", describe_error(exc))
            return None
        if v6 is not None:
            self.round[MAPPINGS]["ipv6"] = v6.to_json()
            for o in v6.outcomes:
                if o.ok and o.step.action != "renew":
                    log.info("IPv6 pinhole %s: %s", o.step.name, o.message)
        return v6

    def _schedule_renewal(self, seconds: float | None) -> None:
        """Renew at half the lease (the port-mapping module says when): run sooner than the interval if needed."""
        slot = self.slots[MAPPINGS]
        if seconds is not None and slot.scheduler is not None and seconds + 1 < slot.interval:
            slot.run_at(datetime.now(timezone.utc) + timedelta(seconds=max(1.0, seconds + 1)))

    def _observe(self) -> RouterObservation:
        def look(router: Any) -> RouterObservation:
            ip = router.external_ip()
            return RouterObservation(ip or "", router.epoch, time.monotonic())

        try:
            return self._session.run(look)
        except Exception:
            self._session.invalidate("the router poll failed")
            raise

    def _detect(self) -> Any:
        # The router source asks through the session; a router that cannot be opened is that source's error
        # (one open attempt, not a second router.timeout), and the other sources still answer.
        return jobs.detect(self.cfg, router=_JustPolled(self._session, self._last_obs))

    def _job_public_ip(self, reason: str) -> JobResult:
        try:
            obs = self._observe()
        except Exception as exc:
            if self._last_obs is not None and self._last_obs.external_ip is not None:
                log.warning("the router stopped answering: %s", describe_error(exc))
            self._last_obs = RouterObservation(None, None, time.monotonic())
            self.watch.router(describe_error(exc))
            return JobResult(False, "no-router", describe_error(exc))
        self.watch.router(None)
        run, why = jobs_after_poll(self._last_obs, obs)
        prev = self._last_obs
        self._last_obs = obs
        mapper = self._session.mapper
        self.health.router.update({"external_ip": obs.external_ip, "epoch": obs.epoch,
                                   "protocol": mapper, "checked": time.time()})
        igd_url = self._session.igd_url
        if mapper == "upnp" and igd_url:
            self._ensure_gena(igd_url)
        if prev is not None and prev.external_ip and obs.external_ip != prev.external_ip:
            self.health.count("public_ip_changes")
        if run:
            log.info("%s: running %s now", why, ", ".join(sorted(run)))
            if DDNS in run and MAPPINGS in run and DDNS in self.slots:
                # A new WAN address: DNS first. The reconcile holds the router session for tens of ms and would
                # make the DDNS round's detection wait; it follows as soon as the round ends (_after_job).
                run = run - {MAPPINGS}
                self._mappings_after_ddns = why
            self.trigger(run, why)
            return JobResult(True, "changed")
        return JobResult(True, "unchanged")

    def _job_ddns(self, reason: str) -> JobResult:
        report = self._detect() if "router" in self.cfg.public_ip.sources else jobs.detect(self.cfg)
        previous, self.report = self.report, report
        self.outcomes.public_ip_verdict = getattr(report, "verdict", None)
        self.store.save("publicip", jobs.to_json(report))
        ip = getattr(report, "public_ipv4", None)
        self.watch.public_ip(previous, report)
        self.round[DDNS] = {"public_ip": jobs.to_json(report), "entries": []}
        if not self.cfg.ddns:
            return JobResult(bool(ip), "ok" if ip else "no-ip", None if ip else getattr(report, "problem", None))
        # Stopped entries are asked too: the DDNS state answers "blocked" without a request, unless the fix
        # (a config or secret change) arrived, and then this round is the retry.
        with self._forced_lock:
            forced, self._forced_ddns = frozenset(self._forced_ddns), set()
        results = jobs.update_ddns(self.cfg, self.store, report, names=None, forced=forced)
        self.round[DDNS]["entries"] = [r.to_json() for r in results]
        self.health.count("ddns_requests", sum(r.requests for r in results))
        for r in results:
            self.outcomes.ddns[r.name] = not r.failed
        for name in [n for n in self.watch.stopped if n not in {d.name for d in self.cfg.ddns}]:
            del self.watch.stopped[name]  # removed from the config
        errors = self.watch.ddns(results)
        if errors:
            return JobResult(False, "entries-failed", "; ".join(errors))
        if ip is None:
            return JobResult(True, "no-ip")  # detection failed: records untouched; the verdict alert covers CGNAT
        return JobResult(True, "updated" if any(r.kind == "success" for r in results) else "unchanged")

    def _job_probe(self, reason: str) -> JobResult:
        results = jobs.probe(self.cfg, self.store, self.report, self._session)
        for r in results:
            self.outcomes.probes[f"{r.name}/{r.family}"] = r.ok
        self.round[PROBE] = {"results": [jobs.to_json(r) for r in results]}
        failed = self.watch.probes(results)
        if failed:
            return JobResult(False, "unreachable", "; ".join(failed))
        return JobResult(True, "reachable")

    def _after_job(self, name: str, result: JobResult, prev_failures: int) -> None:
        # The jobs alert per subject (watch.py); left here: a DDNS round failing as a whole (detection crashed),
        # not for entries that failed (those alerted by name).
        if name == DDNS and result.outcome != "entries-failed":
            self.watch.ddns_round(None if result.ok else result.error)
        if name == DDNS and self._mappings_after_ddns:
            why, self._mappings_after_ddns = self._mappings_after_ddns, None
            self.trigger({MAPPINGS}, why)
        self._save_health()
        if not self.once and self.cfg.service.alerts.heartbeat and (not self.problems()) != self._pinged_ok:
            self._ping()  # healthy <-> unhealthy: ping now, not at the next minute
        self.notifier.status(self.status_line())  # at once, not only at the next heartbeat (StatusText= was "starting")


class _JustPolled:
    """The router as the DDNS round's detection asks it: the address the router poll read under a second ago (the
    poll that triggered this round, so it is this run's observation), else a new question through the session.
    Asking again would wait for the router session while the same event's reconcile holds it."""

    FRESH = 1.0  # seconds

    def __init__(self, session: Any, obs: RouterObservation | None) -> None:
        self._session, self._obs = session, obs

    def external_ip(self) -> str | None:
        obs = self._obs
        if obs is not None and obs.external_ip is not None and time.monotonic() - obs.at < self.FRESH:
            return obs.external_ip
        return self._session.external_ip()
