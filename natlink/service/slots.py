"""One periodic job on the apscheduler: never two runs at once, a trigger while running means "run once
more right after", a failure logs one line and backs off, and nothing a job raises reaches the scheduler."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from natlink.errors import NatlinkError
from natlink.service.policy import retry_delay

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from natlink.service.health import Health

log = logging.getLogger("natlink.service")


@dataclass
class JobResult:
    """What a job function returns: ok, and an outcome name for metrics ("ok", "unchanged", "failed", ...)."""

    ok: bool = True
    outcome: str = "ok"
    error: str | None = None


def describe_error(exc: BaseException) -> str:
    """One line: a NatlinkError already reads well; anything else is named by its type."""
    if isinstance(exc, NatlinkError):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class JobSlot:
    def __init__(self, name: str, fn: Callable[[str], JobResult], *, interval: float, jitter: float,
                 health: "Health", on_done: Callable[[str, JobResult, int], None] | None = None) -> None:
        self.name = name
        self.fn = fn
        self.interval = interval
        self.jitter = jitter
        self.health = health
        self.on_done = on_done
        self.scheduler: "BaseScheduler | None" = None
        self._lock = threading.Lock()
        self._busy = False
        self._pending: str | None = None  # reason of a trigger that arrived while running
        self._closed = False  # the service is stopping: no run starts any more
        self._idle = threading.Event()
        self._idle.set()

    # ------------------------------------------------------------------ scheduling

    def attach(self, scheduler: "BaseScheduler", first_run: datetime | None) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        self.scheduler = scheduler
        # interval > 0 always: a job whose [schedule] key is 0 ("never") has no slot at all
        scheduler.add_job(self.run, IntervalTrigger(seconds=int(self.interval), jitter=self.jitter or None,
                                                  timezone=timezone.utc),
                          id=self.name, name=self.name, args=("schedule",),
                          # 2, not 1: a backoff or renewal moved to "now" while a run is finishing must not be
                          # dropped by apscheduler; run() itself never overlaps (triggers do not use this job)
                          max_instances=2, coalesce=True,
                          # after a suspend, one late run (coalesced) rather than none
                          misfire_grace_time=max(60, int(self.interval)), next_run_time=first_run,
                          replace_existing=True)

    def reschedule(self, interval: float, jitter: float) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        self.interval, self.jitter = interval, jitter
        if self.scheduler is not None:
            self.scheduler.reschedule_job(self.name, trigger=IntervalTrigger(seconds=int(interval),
                                                                             jitter=jitter or None,
                                                                             timezone=timezone.utc))

    def trigger(self, reason: str) -> None:
        """Run now (on a scheduler thread); if running, once more right after."""
        with self._lock:
            if self._closed:
                return
            if self._busy:
                self._pending = reason
                return
        if self.scheduler is None:
            return
        # A one-off job of its own, not the periodic job moved to now: that one is capped by max_instances, and
        # apscheduler silently skipped a trigger landing while two of its runs were still finishing (seen after
        # a burst of router announcements). Extra one-off runs are harmless: run() turns overlap into a re-run.
        try:
            self.scheduler.add_job(self.run, "date", args=(reason,), name=f"{self.name} ({reason})",
                                   misfire_grace_time=None)
        except Exception as exc:  # the scheduler is shutting down
            log.debug("cannot trigger %s: %s", self.name, exc)

    def run_at(self, when: datetime) -> None:
        """Move the next scheduled run (e.g. a lease renewal due before the normal interval)."""
        if self.scheduler is not None:
            self._set_next(when)

    def _set_next(self, when: datetime) -> None:
        assert self.scheduler is not None
        try:
            self.scheduler.modify_job(self.name, next_run_time=when)
        except Exception as exc:  # the scheduler is shutting down
            log.debug("cannot reschedule %s: %s", self.name, exc)
            return
        self.health.set_next_run(self.name, when.timestamp())

    # ------------------------------------------------------------------ running

    def run(self, reason: str = "schedule") -> JobResult | None:
        with self._lock:
            if self._closed:
                return None
            if self._busy:
                self._pending = reason
                return None
            self._busy = True
            self._idle.clear()
        result: JobResult | None = None
        try:
            while True:
                result = self._run_once(reason)
                with self._lock:
                    if self._pending is None or self._closed:
                        self._busy = False
                        self._idle.set()
                        break
                    reason, self._pending = self._pending, None
        except BaseException:
            with self._lock:
                self._busy = False
                self._idle.set()
            raise
        return result

    def _run_once(self, reason: str) -> JobResult:
        self.health.started(self.name, reason)
        started = time.monotonic()
        try:
            result = self.fn(reason)
        except Exception as exc:  # never kill the service: one line, back off
            result = JobResult(False, "failed", describe_error(exc))
            log.debug("job %s traceback", self.name, exc_info=True)
        prev_failures = self.health.finished(self.name, result.ok, result.error, result.outcome)
        failures = self.health.job(self.name).failures
        if result.ok:
            log.debug("job %s (%s): %s in %.0f ms", self.name, reason, result.outcome,
                      (time.monotonic() - started) * 1000)
        elif self._closed:
            # The service is stopping and may have closed what this run used: not a failure worth a line.
            log.debug("%s ended by the stop: %s", self.name, result.error)
        elif self.scheduler is None:  # run --once: no retry will happen, so none is announced
            log.error("%s failed: %s", self.name, result.error)
        else:
            delay = retry_delay(failures, self.interval)
            log.error("%s failed: %s; retrying in %.0fs", self.name, result.error, delay)
            if delay < self.interval:
                self._set_next(datetime.now(timezone.utc) + timedelta(seconds=delay))
        if self.on_done is not None:
            try:
                self.on_done(self.name, result, prev_failures)
            except Exception:
                log.exception("after %s", self.name)
        return result

    def close(self) -> None:
        """No run starts after this (stop); one in progress finishes, and wait_idle() waits for it.

        Checked under the same lock that marks a run busy, so after close() a run is either already
        busy or never starts: wait_idle() cannot return while a just-submitted run is about to begin."""
        with self._lock:
            self._closed = True
            self._pending = None

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    @property
    def busy(self) -> bool:
        return self._busy
