"""JobSlot on a real apscheduler BackgroundScheduler: no overlap, triggers while busy re-run once, failures
back off and never escape."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from natlink.errors import NatlinkError
from natlink.service.health import Health
from natlink.service.slots import JobResult, JobSlot, describe_error
from natlink.state import StateStore
from waiting import wait_until


@pytest.fixture
def scheduler():
    s = BackgroundScheduler(executors={"default": ThreadPoolExecutor(4)}, timezone=timezone.utc)
    s.start()
    yield s
    s.shutdown(wait=False)


@pytest.fixture
def health(tmp_path):
    return Health(StateStore(tmp_path))


def test_trigger_runs_now_and_a_trigger_while_busy_runs_once_more(scheduler, health):
    running = 0
    max_running = 0
    reasons: list[str] = []
    gate = threading.Event()
    lock = threading.Lock()

    def job(reason: str) -> JobResult:
        nonlocal running, max_running
        with lock:
            running += 1
            max_running = max(max_running, running)
        reasons.append(reason)
        if len(reasons) == 1:
            gate.wait(5)
        with lock:
            running -= 1
        return JobResult()

    slot = JobSlot("ddns", job, interval=3600, jitter=0, health=health)
    slot.attach(scheduler, None)  # no first run: only triggers
    slot.trigger("ip change")
    assert wait_until(lambda: reasons == ["ip change"])
    for i in range(5):  # a burst of announcements while the job runs
        slot.trigger(f"announce {i}")
    gate.set()
    assert wait_until(lambda: len(reasons) == 2 and not slot.busy)
    # Nothing else can run: the triggers while busy left no one-off run behind, only the hourly job.
    assert wait_until(lambda: [j.id for j in scheduler.get_jobs()] == ["ddns"])
    assert reasons == ["ip change", "announce 4"]  # coalesced into one more run, with the latest reason
    assert max_running == 1
    assert health.job("ddns").runs == 2


def test_failure_backs_off_and_the_next_run_is_sooner_than_the_interval(scheduler, health, caplog):
    calls: list[float] = []

    def job(reason: str) -> JobResult:
        calls.append(time.time())
        raise NatlinkError("router did not answer", "check it")

    slot = JobSlot("mappings", job, interval=3600, jitter=0, health=health)
    slot.attach(scheduler, datetime.now(timezone.utc))
    assert wait_until(lambda: len(calls) == 1 and health.job("mappings").failures == 1)
    next_run = scheduler.get_job("mappings").next_run_time.timestamp()
    assert 5 < next_run - calls[0] < 15  # retry_delay(1) = 10 s, not the hour
    assert "mappings failed: router did not answer — check it; retrying in 10s" in caplog.text
    assert health.job("mappings").last_error == "router did not answer — check it"


def test_unexpected_exception_is_contained(health):
    slot = JobSlot("probe", lambda reason: 1 / 0, interval=60, jitter=0, health=health)
    result = slot.run("test")
    assert result == JobResult(False, "failed", "ZeroDivisionError: division by zero")
    assert slot.run("again").ok is False  # still usable


def test_on_done_gets_previous_failures(health):
    seen: list[tuple[str, bool, int]] = []
    outcomes = iter([JobResult(False, "failed", "x"), JobResult(False, "failed", "x"), JobResult(True)])
    slot = JobSlot("ddns", lambda r: next(outcomes), interval=60, jitter=0, health=health,
                   on_done=lambda name, res, prev: seen.append((name, res.ok, prev)))
    for _ in range(3):
        slot.run("test")
    assert seen == [("ddns", False, 0), ("ddns", False, 1), ("ddns", True, 2)]


def test_a_closed_slot_starts_no_run(tmp_path: Path) -> None:
    runs: list[str] = []
    slot = JobSlot("mappings", lambda reason: runs.append(reason) or JobResult(), interval=60, jitter=0,
                   health=Health(StateStore(tmp_path)))
    slot.close()
    assert slot.run("ip change") is None  # e.g. handed to a worker thread just before the stop
    slot.trigger("announce")
    assert runs == [] and slot.wait_idle(0)


@pytest.mark.parametrize("exc, line", [
    (NatlinkError("no router", "turn it on"), "no router — turn it on"),
    (OSError("boom\nsecond line"), "OSError: boom"),
    (TimeoutError(), "TimeoutError"),
])
def test_describe_error(exc, line):
    assert describe_error(exc) == line
