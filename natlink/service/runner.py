"""`natlink run`: the jobs on an apscheduler schedule, triggered at once by router/host events; signals
(SIGHUP reload, SIGTERM/SIGINT stop), sd_notify, health state, metrics and alerts."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from natlink.config import Config, ServiceCfg, load_config
from natlink.errors import NatlinkError
from natlink.service import jobs
from natlink.service.alerts import Alert, Alerter
from natlink.service.events import Event
from natlink.service.health import HEARTBEAT_EVERY, Health
from natlink.service.history import History
from natlink.service.listening import Listening
from natlink.service.metrics import LastOutcomes, MetricsServer
from natlink.service.notify import Notifier
from natlink.service.policy import (
    ANNOUNCE, DDNS, MAPPINGS, PROBE, PUBLIC_IP, RouterObservation, job_intervals, jobs_for_event, router_needed,
)
from natlink.service.runs import JobRuns
from natlink.service.slots import JobSlot, describe_error
from natlink.service.surfaces import Surfaces
from natlink.service.wakeup import Wakeup
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
ALIVE = "natlink-scheduler-alive"  # a job (on its own executor) that shows the scheduler's loop still runs jobs


class Service(JobRuns, Surfaces):
    """One `natlink run` (or `run --once`): its state, the schedule, event sources and lifecycle; the job bodies
    are in runs.py, the metrics/status page/heartbeat in surfaces.py."""

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
        self.outcomes = LastOutcomes()
        self.report: Any = None  # the last PublicIpReport
        # One router session shared by every job (mappings, router poll, detection, probe): discovered once,
        # serialised by its lock, rediscovered after a failure (natlink.portmap.session).
        self._session = jobs.router_session(cfg, self.store)
        self._last_obs: RouterObservation | None = None
        self._mappings_ran = False
        self._mappings_after_ddns: str | None = None  # a WAN change's reconcile, run once its DDNS round ended
        self._wakeup = Wakeup()  # the main loop's only wake-up: signals, stop() and request_reload()
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
        self._tick = min(HEARTBEAT_EVERY, self.notifier.watchdog_interval or HEARTBEAT_EVERY)  # main loop wake-ups
        self._alive_at = time.monotonic()  # when the scheduler last ran the ALIVE job
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

    def status_line(self) -> str:
        parts = []
        for name, slot in self.slots.items():
            rec = self.health.job(name)
            parts.append(f"{name} {rec.last_outcome or 'pending'}" + (f" ({rec.failures}x)" if rec.failures else ""))
        ip = self._last_obs.external_ip if self._last_obs else None
        return (f"router {ip or '?'}; " if ip is not None else "") + ", ".join(parts)

    def _watchdog_ok(self) -> bool:
        """Ping systemd only while the scheduler runs jobs and no job hangs."""
        if time.monotonic() - self._alive_at > 2 * self._tick + 1:
            log.error("the scheduler ran no job for %.0fs; letting the watchdog restart the service",
                      time.monotonic() - self._alive_at)
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

    def run(self) -> int:
        self.lock.acquire()  # before anything is written: a second instance stops here ("already running, pid N")
        if self.once:
            return self.run_once()
        self._install_signals()
        self._start_metrics()
        self._start_web()
        self.scheduler = self._new_scheduler()
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

    def _new_scheduler(self) -> Any:
        """The jobs' scheduler, with the ALIVE job on an executor of its own: busy or hung jobs never delay it,
        only a scheduler loop that stopped does (what _watchdog_ok checks, without apscheduler's internals)."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(max_workers=4),
                                                   ALIVE: ThreadPoolExecutor(max_workers=1)}, timezone=timezone.utc)
        self._alive_at = time.monotonic()
        scheduler.add_job(self._scheduler_alive, "interval", seconds=self._tick, id=ALIVE, executor=ALIVE,
                          next_run_time=datetime.now(timezone.utc), coalesce=True, max_instances=1,
                          misfire_grace_time=None)
        return scheduler

    def _scheduler_alive(self) -> None:
        self._alive_at = time.monotonic()

    def _main_loop(self) -> None:
        last_beat = time.monotonic()
        while not self._stopping:
            self._wait_for_command(self._tick)
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
        """Sleep until a signal or stop()/request_reload() arrives (or timeout); act on the signal numbers read."""
        for signum in self._wakeup.wait(timeout):
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
        self._wakeup.send(signum)

    def _install_signals(self) -> None:
        self._wakeup.install_signals()

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
