"""The service's own health: per-job outcomes, counters and a heartbeat, persisted as state key "service"
so `natlink status` (another process, maybe another user) can read it."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from natlink import __version__
from natlink.state import StateStore

STATE_KEY = "service"
HEARTBEAT_EVERY = 30.0  # seconds between heartbeat writes while idle
STALE_AFTER = 3 * HEARTBEAT_EVERY + 30  # a heartbeat older than this means the service is hung or gone


@dataclass
class JobRecord:
    runs: int = 0
    failures: int = 0  # consecutive
    last_start: float | None = None
    last_end: float | None = None
    last_success: float | None = None
    last_outcome: str | None = None  # "ok" | "failed"
    last_error: str | None = None
    last_reason: str | None = None  # what triggered the last run: "schedule", "startup", an event …
    next_run: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome -> count, for metrics


class Health:
    """Thread-safe: jobs run on scheduler threads, listeners on their own."""

    def __init__(self, store: StateStore, *, mode: str = "service", config_path: str | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        # Jobs finish on several threads and each saves; without this an older snapshot could be written
        # after a newer one (its fsync was slower) and `natlink status` would miss the last runs until the
        # next heartbeat, 30 s later.
        self._save_lock = threading.Lock()
        previous = store.load(STATE_KEY, {}) or {}
        self.jobs: dict[str, JobRecord] = {}
        self.counters: dict[str, int] = {}
        # Alert rate-limit history survives restarts so a crash loop cannot spam.
        self.alerts_sent: dict[str, float] = {k: float(v) for k, v in (previous.get("alerts_sent") or {}).items()
                                              if isinstance(v, (int, float))}
        self.stopped_entries: dict[str, str] = {}  # DDNS entry -> why it was stopped (fatal provider answer)
        self.router: dict[str, Any] = {}
        self.doc: dict[str, Any] = {
            "pid": os.getpid(), "version": __version__, "mode": mode, "config": config_path,
            "started": time.time(), "running": True, "stopped": None,
            "previous_start": previous.get("started"), "previous_clean_stop": bool(previous.get("stopped")),
        }

    def job(self, name: str) -> JobRecord:
        with self._lock:
            return self.jobs.setdefault(name, JobRecord())

    def started(self, name: str, reason: str) -> None:
        with self._lock:
            rec = self.jobs.setdefault(name, JobRecord())
            rec.last_start, rec.last_reason = time.time(), reason

    def finished(self, name: str, ok: bool, error: str | None, outcome: str | None = None) -> int:
        """Record a run; returns the previous consecutive failure count."""
        with self._lock:
            rec = self.jobs.setdefault(name, JobRecord())
            prev = rec.failures
            rec.runs += 1
            rec.last_end = time.time()
            rec.last_outcome = outcome or ("ok" if ok else "failed")
            rec.outcomes[rec.last_outcome] = rec.outcomes.get(rec.last_outcome, 0) + 1
            if ok:
                rec.failures, rec.last_success, rec.last_error = 0, rec.last_end, None
            else:
                rec.failures += 1
                rec.last_error = error
            return prev

    def set_next_run(self, name: str, when: float | None) -> None:
        with self._lock:
            self.jobs.setdefault(name, JobRecord()).next_run = when

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self.counters[counter] = self.counters.get(counter, 0) + n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.doc,
                "heartbeat": time.time(),
                "jobs": {k: asdict(v) for k, v in sorted(self.jobs.items())},
                "counters": dict(sorted(self.counters.items())),
                "alerts_sent": dict(self.alerts_sent),
                "stopped_entries": dict(self.stopped_entries),
                "router": dict(self.router),
            }

    def save(self) -> None:
        with self._save_lock:  # snapshot and write in one order: the file always ends with the newest
            # not fsynced: rewritten after every job and heartbeat, and a slow fsync here kept the job's slot
            # busy, delaying the next trigger (a router reboot's repair waited 6 s under disk load)
            self._store.save(STATE_KEY, self.snapshot(), durable=False)

    def reloaded(self, ok: bool, error: str | None) -> None:
        """The verdict on the last SIGHUP, counted: `natlink reload` (systemd's ExecReload=) waits for a count
        above the one it saw before signalling, and fails the reload when the service rejected the config."""
        with self._lock:
            count = int((self.doc.get("reload") or {}).get("count", 0)) + 1
            self.doc["reload"] = {"count": count, "at": time.time(), "ok": ok, "error": error}

    def mark_stopped(self) -> None:
        with self._lock:
            self.doc["running"] = False
            self.doc["stopped"] = time.time()
        self.save()


def liveness(doc: dict[str, Any] | None, now: float, pid_alive: bool) -> str:
    """PURE: "running" | "hung" (process there, heartbeat stale) | "stopped" (clean) | "dead" (gone without a
    clean stop: crash, kill -9) | "never" (no record). One-shot runs report "oneshot"."""
    if not doc:
        return "never"
    if doc.get("mode") == "oneshot":
        return "oneshot"
    if not doc.get("running"):
        return "stopped"
    if not pid_alive:
        return "dead"
    beat = doc.get("heartbeat")
    if not isinstance(beat, (int, float)) or now - beat > STALE_AFTER:
        return "hung"
    return "running"


def reload_count(doc: dict[str, Any] | None) -> int:
    """PURE: how many reloads the service in this health document has judged (0 before the first)."""
    count = ((doc or {}).get("reload") or {}).get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def reload_verdict(doc: dict[str, Any] | None, pid: int, seen: int) -> dict[str, Any] | None:
    """PURE: the service's verdict on a reload asked after it had judged ``seen`` reloads, or None while it has
    not judged it (or the document is another process's: a restarted service counts from 0 again)."""
    if not doc or doc.get("pid") != pid or reload_count(doc) <= seen:
        return None
    return dict(doc["reload"])


def pid_alive(pid: Any) -> bool:
    """Is a natlink process with this pid alive? (The service may run as another user: EPERM means yes.)"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"natlink" in fh.read()  # guards against a recycled pid
    except OSError:
        return True  # no /proc to check: trust kill(0)
