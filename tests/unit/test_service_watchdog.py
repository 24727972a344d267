"""The systemd watchdog is pinged only while apscheduler's loop still runs jobs: the ALIVE job on its own
executor shows it, without reading the scheduler's private thread."""

from __future__ import annotations

import threading
from pathlib import Path

from natlink.config import parse_config
from natlink.service.runner import ALIVE, Service
from waiting import wait_until


def test_watchdog_ok_while_the_scheduler_runs_and_not_once_it_stopped(tmp_path: Path) -> None:
    cfg = parse_config(f'[router]\ngateway = "127.0.0.1"\nlan_ip = "127.0.0.1"\n'
                       f'[service]\nstate_dir = "{tmp_path / "state"}"\n', tmp_path / "natlink.toml")
    svc = Service(cfg, events=False)
    svc._tick = 0.1
    ran = threading.Event()
    beat = svc._scheduler_alive

    def alive() -> None:
        beat()
        ran.set()

    svc._scheduler_alive = alive  # type: ignore[method-assign]
    svc.scheduler = svc._new_scheduler()
    svc.scheduler.start()  # no slot attached: the ALIVE job is all it runs
    try:
        assert ran.wait(5) and svc.scheduler.get_job(ALIVE).executor == ALIVE
        assert svc._watchdog_ok()
    finally:
        svc.scheduler.shutdown(wait=False)
    assert wait_until(lambda: not svc._watchdog_ok())  # two ticks and a second without the ALIVE job
