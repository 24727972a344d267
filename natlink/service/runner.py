"""`natlink run`: the jobs on an apscheduler schedule, triggered at once by router/host events; signals
(SIGHUP reload, SIGTERM/SIGINT stop), sd_notify, health state, metrics and alerts."""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from natlink.config import Config, ServiceCfg, load_config
from natlink.errors import NatlinkError
from natlink.service import jobs
from natlink.service.alerts import Alert, Alerter, ping_heartbeat
from natlink.service.events import Event
from natlink.service.health import HEARTBEAT_EVERY, Health
from natlink.service.history import History
from natlink.service.listening import Listening
from natlink.service.metrics import Facts, MetricsServer, render
from natlink.service.notify import Notifier
from natlink.service.policy import (
    ANNOUNCE, DDNS, MAPPINGS, PROBE, PUBLIC_IP, RouterObservation, job_intervals, jobs_after_poll, jobs_for_event,
    router_needed,
)
from natlink.service.slots import JobSlot, Result, describe_error
from natlink.service.watch import Watch
from natlink.state import InstanceLock, StateStore

log = logging.getLogger("natlink.service")

# Seconds to let running jobs finish on SIGTERM: inside the unit's TimeoutStopSec=10s, with room for unmap_on_stop
# and the "service-stopped" alert. Usually nothing runs and the stop takes milliseconds.
STOP_GRACE = 6.0
ALERT_FLUSH = 2.0  # seconds the stop waits for alerts still being delivered
HUNG_JOB = float(ServiceCfg.hung_job)  # default of service.hung_job: a job running longer stops the watchdog pings
TRIGGER_ORDER = [PUBLIC_IP, DDNS, MAPPINGS, PROBE]
HEARTBEAT_PING_EVERY = 60.0  # seconds between pings of service.alerts.heartbeat


class Service:
    def __init__(self, cfg: Config, *, once: bool = False, events: bool = True) -> None:
        self.cfg = cfg
        self.once = once
        self.events_enabled = events and not once
        self.store = StateStore(cfg.service.state_dir)
        self.lock = InstanceLock(cfg.service.state_dir)
        self.health = Health(self.store, mode="oneshot" if once else "service",
                             config_path=str(cfg.path) if cfg.path else None)
        self.alerter = Alerter(cfg.service.alerts, self.health.alerts_sent, on_sent=lambda: self.health.count("alerts"))
        self.history = History(self.store)  # what the status page lists: every alert, every mapping repair
        self.alerter.on_raise = self.history.add_alert
        self._forced_ddns: set[str] = set()  # entries the status page asked to update now
        self._forced_lock = threading.Lock()
        self.watch = Watch(self.alerter)
        self.health.stopped_entries = self.watch.stopped  # one dict: what status shows is what the service decided
        self.round: dict[str, Any] = {}  # what each job did last (run --once prints it)
        self._last_ping = 0.0
        self._pinged_ok: bool | None = None  # what the last heartbeat ping said
        self.notifier = Notifier.from_env()
        self.facts = Facts()
        self.report: Any = None  # the last PublicIpReport
        # One router session shared by every job (mappings, router poll, detection, probe): discovered once,
        # serialised by its lock, rediscovered after a failure (natlink.portmap.session).
        self._session = jobs.router_session(cfg, self.store)
        self._last_obs: RouterObservation | None = None
        self._mappings_ran = False
        self._mappings_after_ddns: str | None = None  # a WAN change's reconcile, run once its DDNS round ended
        # The main loop's only wake-up: signal numbers, written by CPython's C-level handler through
        # signal.set_wakeup_fd, and by stop()/request_reload() from any thread (see _install_signals).
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._reload_requested = False
        self._renew_all = threading.Event()  # re-request every lease on the next mappings run
        if not once:
            # What happened while we were down is unknown (a crash, a router reboot): NAT-PMP/PCP cannot list
            # the table, so re-request each lease once at start (idempotent; one small request per mapping).
            self._renew_all.set()
        self.listening = Listening(self.on_event, self.store)
        self._metrics: MetricsServer | None = None
        self._web: Any = None  # the status page (natlink.web.server.WebServer) while service.web is set
        self.scheduler: Any = None
        self.slots: dict[str, JobSlot] = {}
        self._build_slots()

    # ------------------------------------------------------------------ jobs

    def _owned_mappings(self) -> bool:
        """natlink mappings recorded on the router (maybe from an older config): the mappings job removes them."""
        return bool(self.store.load("mappings"))

    def _intervals(self) -> dict[str, int]:
        return job_intervals(self.cfg, self._owned_mappings())

    def _build_slots(self) -> None:
        for name, interval in self._intervals().items():
            self.slots[name] = self._new_slot(name, interval)

    def _new_slot(self, name: str, interval: int) -> JobSlot:
        fns = {MAPPINGS: self._job_mappings, PUBLIC_IP: self._job_public_ip, DDNS: self._job_ddns,
               PROBE: self._job_probe}
        return JobSlot(name, fns[name], interval=interval, jitter=self.cfg.schedule.jitter, health=self.health,
                       on_done=self._after_job)

    def _apply_intervals(self) -> None:
        """After a reload: add the jobs the new config needs, drop those it does not, reschedule the rest."""
        wanted = self._intervals()
        for name in [n for n in self.slots if n not in wanted]:
            slot = self.slots.pop(name)
            slot.close()
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(name)
            log.info("%s: off in the new config", name)
        for name, interval in wanted.items():
            if name in self.slots:
                self.slots[name].reschedule(interval, self.cfg.schedule.jitter)
            else:
                self.slots[name] = slot = self._new_slot(name, interval)
                slot.attach(self.scheduler, datetime.now(timezone.utc))
                log.info("%s: on in the new config (every %ss)", name, interval)

    def trigger(self, names: frozenset[str] | set[str], reason: str) -> None:
        names = set(names)
        if PUBLIC_IP in names and PUBLIC_IP not in self.slots:
            names.add(DDNS)  # no router poll (nothing uses the router): a host event goes straight to detection
        # The router poll and DDNS first: they share the router session's lock with the mappings run the same
        # event triggers, and a WAN change should reach DNS before the (slower) reconcile takes the lock.
        for name in sorted(names, key=TRIGGER_ORDER.index):
            slot = self.slots.get(name)
            if slot is not None:
                slot.trigger(reason)

    def _job_mappings(self, reason: str) -> Result:
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
        self.facts.mappings_present = sum(1 for a in actions if a.ok and a.action != "delete")
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
                return Result(False, "failed", "; ".join(p for p in problems if p))
        return Result(True, "changed" if changed else "unchanged")

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

    def _job_public_ip(self, reason: str) -> Result:
        try:
            obs = self._observe()
        except Exception as exc:
            if self._last_obs is not None and self._last_obs.external_ip is not None:
                log.warning("the router stopped answering: %s", describe_error(exc))
            self._last_obs = RouterObservation(None, None, time.monotonic())
            self.watch.router(describe_error(exc))
            return Result(False, "no-router", describe_error(exc))
        self.watch.router(None)
        run, why = jobs_after_poll(self._last_obs, obs)
        prev = self._last_obs
        self._last_obs = obs
        protocol = self._session.protocol
        self.health.router.update({"external_ip": obs.external_ip, "epoch": obs.epoch,
                                   "protocol": protocol, "checked": time.time()})
        igd_url = self._session.igd_url
        if protocol == "upnp" and igd_url:
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
            return Result(True, "changed")
        return Result(True, "unchanged")

    def _job_ddns(self, reason: str) -> Result:
        report = self._detect() if "router" in self.cfg.public_ip.sources else jobs.detect(self.cfg)
        previous, self.report = self.report, report
        self.facts.public_ip_verdict = getattr(report, "verdict", None)
        self.store.save("publicip", jobs.to_json(report))
        ip = getattr(report, "public_ipv4", None)
        self.watch.public_ip(previous, report)
        self.round[DDNS] = {"public_ip": jobs.to_json(report), "entries": []}
        if not self.cfg.ddns:
            return Result(bool(ip), "ok" if ip else "no-ip", None if ip else getattr(report, "problem", None))
        # Stopped entries are asked too: the DDNS state answers "blocked" without a request, unless the fix
        # (a config or secret change) arrived, and then this round is the retry.
        with self._forced_lock:
            forced, self._forced_ddns = frozenset(self._forced_ddns), set()
        results = jobs.update_ddns(self.cfg, self.store, report, names=None, forced=forced)
        self.round[DDNS]["entries"] = [r.to_json() for r in results]
        self.health.count("ddns_requests", sum(r.requests for r in results))
        for r in results:
            self.facts.ddns[r.name] = not r.failed
        for name in [n for n in self.watch.stopped if n not in {d.name for d in self.cfg.ddns}]:
            del self.watch.stopped[name]  # removed from the config
        errors = self.watch.ddns(results)
        if errors:
            return Result(False, "entries-failed", "; ".join(errors))
        if ip is None:
            return Result(True, "no-ip")  # detection failed: records untouched; the verdict alert covers CGNAT
        return Result(True, "updated" if any(r.kind == "success" for r in results) else "unchanged")

    def _job_probe(self, reason: str) -> Result:
        results = jobs.probe(self.cfg, self.store, self.report, self._session)
        for r in results:
            self.facts.probes[f"{r.name}/{r.family}"] = r.ok
        self.round[PROBE] = {"results": [jobs.to_json(r) for r in results]}
        failed = self.watch.probes(results)
        if failed:
            return Result(False, "unreachable", "; ".join(failed))
        return Result(True, "reachable")

    def _after_job(self, name: str, result: Result, prev_failures: int) -> None:
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

    # ------------------------------------------------------------------ events

    def on_event(self, event: Event) -> None:
        self.health.count(f"event:{event.kind}")
        log.debug("event: %s", event.detail)
        if event.kind == ANNOUNCE:
            self._renew_all.set()
        self.trigger(jobs_for_event(event.kind), event.detail)

    def _start_listeners(self) -> None:
        if self.events_enabled:
            self.listening.start(self.cfg, router=router_needed(self.cfg, self._owned_mappings()))

    def _ensure_gena(self, root_url: str) -> None:
        self.listening.ensure_gena(root_url, self.cfg.router.timeout)

    def _stop_listeners(self) -> None:
        self.listening.stop()

    # ------------------------------------------------------------------ health, metrics

    def _mark_stopped(self) -> None:
        try:
            self.health.mark_stopped()
        except NatlinkError as exc:
            log.error("%s", exc)

    def _save_health(self) -> None:
        try:
            self.health.save()
        except NatlinkError as exc:
            log.error("%s", exc)

    def _judged_reload(self, ok: bool, error: str | None) -> None:
        """Recorded and saved at once: `natlink reload` (ExecReload=) is waiting for this verdict."""
        self.health.reloaded(ok, error)
        self._save_health()

    def metrics_page(self) -> str:
        return render(self.health.snapshot(), self.facts)

    def _start_metrics(self) -> None:
        if self.cfg.service.metrics:
            self._metrics = MetricsServer(self.cfg.service.metrics, self.metrics_page).start()

    def _start_web(self) -> None:
        if self.cfg.service.web:
            from natlink.web.server import Actions, WebServer

            self._web = WebServer(self.cfg.service.web, self.cfg.service.web_password, lambda: self.cfg, self.store,
                                  Actions(self.check_now, self.update_now)).start()

    def _reload_web(self, old: Config) -> None:
        """A changed page address restarts the page; a new password value logs everyone out."""
        try:
            if (old.service.web, old.service.web_password) != (self.cfg.service.web, self.cfg.service.web_password):
                if self._web is not None:
                    self._web.stop()
                    self._web = None
                self._start_web()
            elif self._web is not None:
                self._web.reload_password(self.cfg.service.web_password)
        except NatlinkError as exc:
            log.error("%s", exc)

    def check_now(self) -> str:
        """The status page's "check now": one round of every job, at once."""
        self.trigger({MAPPINGS, PUBLIC_IP, DDNS, PROBE}, "check now (status page)")
        return "check started: mappings, public address, DDNS and probes run now"

    def update_now(self, name: str) -> str:
        """The status page's "update now" for one DDNS entry (like `natlink ddns --force NAME`); KeyError if unknown."""
        if name not in {d.name for d in self.cfg.ddns}:
            raise KeyError(name)
        with self._forced_lock:
            self._forced_ddns.add(name)
        self.trigger({DDNS}, f"update now: {name} (status page)")
        return f"update of {name} started: the provider is asked now, even if the address did not change"

    def status_line(self) -> str:
        parts = []
        for name, slot in self.slots.items():
            rec = self.health.job(name)
            parts.append(f"{name} {rec.last_outcome or 'pending'}" + (f" ({rec.failures}x)" if rec.failures else ""))
        ip = self._last_obs.external_ip if self._last_obs else None
        return (f"router {ip or '?'}; " if ip is not None else "") + ", ".join(parts)

    def _watchdog_ok(self) -> bool:
        """Ping systemd only while the scheduler thread lives and no job hangs."""
        thread = getattr(self.scheduler, "_thread", None)
        if thread is not None and not thread.is_alive():
            return False
        now = time.time()
        for name, slot in self.slots.items():
            rec = self.health.job(name)
            if slot.busy and rec.last_start and now - rec.last_start > self.cfg.service.hung_job:
                log.error("%s has been running for %.0fs; letting the watchdog restart the service", name,
                          now - rec.last_start)
                return False
        return True

    # ------------------------------------------------------------------ lifecycle

    def run_once(self) -> int:
        """One round, for timers/cron: mappings, public IP + DDNS, probe; 0 when all went well. What each job
        did is in self.round (the command prints it); the heartbeat URL gets one ping with the outcome."""
        try:
            results = {name: self.slots[name].run("oneshot") for name in (MAPPINGS, DDNS, PROBE) if name in self.slots}
            self.round["results"] = {name: r for name, r in results.items() if r is not None}
            self._mark_stopped()
            healthy = all(r is not None and r.ok for r in results.values())
            self._ping(healthy, wait=True)
            self.alerter.flush(ALERT_FLUSH)
        finally:
            self.lock.release()
        return 0 if healthy else 1

    def problems(self) -> list[str]:
        """What is not healthy now, one short phrase each (the heartbeat's failure text)."""
        out = [f"{name}: {self.health.job(name).last_error}" for name in self.slots if self.health.job(name).failures]
        return out + [f"ddns {name} stopped" for name in self.watch.stopped]

    def _ping(self, healthy: bool | None = None, *, wait: bool = False) -> None:
        """One heartbeat ping (service.alerts.heartbeat), success or failure; in the background unless wait."""
        url = self.cfg.service.alerts.heartbeat
        if not url:
            return
        problems = self.problems()
        ok = not problems if healthy is None else healthy and not problems
        text = "natlink: healthy" if ok else "natlink: " + "; ".join(problems or ["a job failed"])
        self._last_ping, self._pinged_ok = time.monotonic(), ok
        if wait:
            ping_heartbeat(url, ok, text)
        else:
            threading.Thread(target=ping_heartbeat, args=(url, ok, text), name="natlink-heartbeat",
                             daemon=True).start()

    def run(self) -> int:
        self.lock.acquire()  # before anything is written: a second instance stops here ("already running, pid N")
        if self.once:
            return self.run_once()
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._install_signals()
        self._start_metrics()
        self._start_web()
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(max_workers=4)},
                                             timezone=timezone.utc)
        now = datetime.now(timezone.utc)
        for name, slot in self.slots.items():
            # mappings, router poll and DDNS right away; the probe after the first mappings run
            first = now + timedelta(seconds=slot.interval) if name == PROBE else now
            slot.attach(self.scheduler, first)
        self.scheduler.start()
        self._start_listeners()
        self._save_health()
        log.info("natlink service started (pid %s, state in %s; jobs: %s)", self.health.doc["pid"],
                 self.cfg.service.state_dir, ", ".join(f"{n} every {s.interval}s" for n, s in self.slots.items()))
        self.alerter.raise_(Alert("service-started", "service", f"natlink {self.health.doc['version']} started "
                                  f"(pid {self.health.doc['pid']})"))
        self.notifier.ready("starting")
        self._main_loop()
        return self._shutdown()

    def _main_loop(self) -> None:
        tick = min(HEARTBEAT_EVERY, self.notifier.watchdog_interval or HEARTBEAT_EVERY)
        last_beat = time.monotonic()
        while not self._stopping:
            self._wait_for_command(tick)
            if self._stopping:
                break
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
            if self._watchdog_ok():
                self.notifier.watchdog()
            if time.monotonic() - last_beat >= HEARTBEAT_EVERY - 0.5:
                last_beat = time.monotonic()
                self._save_health()
                self.notifier.status(self.status_line())
            if time.monotonic() - self._last_ping >= HEARTBEAT_PING_EVERY:
                self._ping()

    def _wait_for_command(self, timeout: float) -> None:
        """Sleep until a signal or stop()/request_reload() arrives (or timeout); act on the signal numbers read.

        Not threading.Event + a Python handler: a process-directed signal may be taken by any thread, and
        CPython then only flags it for the main thread, which sleeps on in its futex (seen: the main thread
        back in restart_syscall, SIGTERM/SIGHUP unhandled for the whole tick). The C-level handler writes the
        wakeup fd whichever thread it runs on, so this select always wakes."""
        ready, _, _ = select.select([self._wake_r], [], [], timeout)
        if not ready:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while data := self._wake_r.recv(4096):
                for signum in data:
                    if signum in (signal.SIGTERM, signal.SIGINT):
                        self._stopping = True
                    elif signum == signal.SIGHUP:
                        self._reload_requested = True

    def _shutdown(self) -> int:
        """Stop scheduling, let running jobs finish (up to STOP_GRACE), then one log line and exit 0. Jobs that
        fail because of the stop (a closed router) say nothing: slots are closed first (see JobSlot.close)."""
        started = time.monotonic()
        log.debug("stopping")
        self.notifier.stopping()
        self._stop_listeners()
        # Closed before the scheduler stops: a run apscheduler already handed to a worker thread (an event's
        # trigger a moment ago) must not start after wait_idle() said idle, e.g. re-adding what unmap removes.
        for slot in self.slots.values():
            slot.close()
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)
        deadline = started + STOP_GRACE
        waited = [name for name, slot in self.slots.items() if slot.busy]
        for slot in self.slots.values():
            slot.wait_idle(max(0.0, deadline - time.monotonic()))
        if self.cfg.service.unmap_on_stop:
            try:
                actions = jobs.unmap_all(self.cfg, self.store, self._session)
                holes = jobs.unmap_pinholes(self.cfg, self.store, self._session)
                failed = [a for a in actions if not a.ok] + [o.step for o in holes.outcomes if not o.ok]
                if failed:
                    log.error("unmap on stop: %s could not be removed (see `natlink mappings`)",
                              ", ".join(a.name for a in failed))
                else:
                    log.info("removed %d natlink mapping(s) (service.unmap_on_stop)", len(actions))
            except Exception as exc:
                log.error("unmap on stop failed: %s", describe_error(exc))
        self._session.close()
        if self._metrics is not None:
            self._metrics.stop()
        if self._web is not None:
            self._web.stop()
        self._mark_stopped()
        self.alerter.raise_(Alert("service-stopped", "service", f"natlink stopped (pid {self.health.doc['pid']})"))
        self.alerter.flush(ALERT_FLUSH)
        busy = self.busy_jobs()
        log.info("stopped in %.2fs%s%s", time.monotonic() - started,
                 f" (waited for {', '.join(waited)})" if waited and not busy else "",
                 f"; {', '.join(busy)} still running after {STOP_GRACE:.0f}s, abandoned (its state writes are "
                 "atomic)" if busy else "")
        self.lock.release()
        return 0

    def busy_jobs(self) -> list[str]:
        return [name for name, slot in self.slots.items() if slot.busy]

    def stop(self) -> None:
        """From any thread: the main loop stops."""
        self._send_command(signal.SIGTERM)

    def request_reload(self) -> None:
        """From any thread: the main loop reloads the config."""
        self._send_command(signal.SIGHUP)

    def _send_command(self, signum: int) -> None:
        with contextlib.suppress(OSError):  # a full buffer already holds a wake-up
            self._wake_w.send(bytes([signum]))

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # The Python handlers do nothing on purpose: installing one makes the C-level handler write the signal
        # number to the wakeup fd, and _wait_for_command acts on it. A handler that took a lock (Event.set)
        # could also deadlock against the main thread holding that same lock when the handler runs.
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _ignore_signal)

    def reload(self) -> bool:
        """Validate the new config first; a bad one is rejected with one log line and the old one keeps running."""
        self.notifier.reloading()
        try:
            new = load_config(str(self.cfg.path) if self.cfg.path else None)
        except NatlinkError as exc:
            log.error("reload rejected, the running config stays in use: %s", exc)
            self._judged_reload(False, str(exc))
            self.notifier.ready(f"reload rejected: {exc.message}")
            return False
        if new.service.state_dir != self.cfg.service.state_dir:
            log.warning("service.state_dir changes only on restart; still using %s", self.cfg.service.state_dir)
            import dataclasses

            new = dataclasses.replace(new, service=dataclasses.replace(new.service, state_dir=self.cfg.service.state_dir))
        old = self.cfg
        self.cfg = new
        self.alerter.cfg = new.service.alerts
        # Stopped DDNS entries stay stopped unless the reload fixed them: the round triggered below asks the
        # DDNS state, which unblocks an entry whose config or secret value changed.
        self._apply_intervals()
        if (old.router, old.public_ip.ipv6, router_needed(old, False)) != (new.router, new.public_ip.ipv6,
                                                                            router_needed(new, False)):
            self._session.invalidate("the router settings changed")
            self._session = jobs.router_session(new, self.store)
            self._stop_listeners()
            self._start_listeners()
        if old.service.metrics != new.service.metrics:
            if self._metrics is not None:
                self._metrics.stop()
                self._metrics = None
            try:
                self._start_metrics()
            except NatlinkError as exc:
                log.error("%s", exc)
        self._reload_web(old)
        log.info("reloaded %s", new.path)
        self._judged_reload(True, None)
        self.notifier.ready("reloaded")
        self.trigger({MAPPINGS, DDNS, PROBE}, "config reloaded")
        return True


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


def _ignore_signal(signum: int, frame: object) -> None:
    """See Service._install_signals: the wakeup fd carries the signal to the main loop."""
