"""The jobs follow the config: 0 in [schedule] means never for every key, nothing polls the router when nothing
needs it, and a reload adds, drops and reschedules jobs on a real apscheduler (the `max(1, 0)` bug: a probe
reloaded to 0 ran every second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from natlink.config import parse_config
from natlink.errors import ConfigError
from natlink.service.policy import DDNS, MAPPINGS, PROBE, PUBLIC_IP, Streak, ipv6_prefix, job_intervals, streak_step
from natlink.service.runner import Service

MAPPING = '[[mapping]]\nname = "rdp"\nexternal_port = 3390\n'
PROBE_CFG = '[[probe]]\nmapping = "rdp"\nreflector = "http://127.0.0.1:9"\n'
ECHO = '[public_ip]\nsources = ["https://127.0.0.1:9/ip"]\n'
DDNS_CFG = ('[[ddns]]\nname = "d"\nprovider = "duckdns"\nhostnames = ["x.duckdns.org"]\n'
            'token_env = "NATLINK_TEST_NO_SUCH_VAR"\n')


def cfg(text: str, schedule: str = "", tmp: Path = Path("/nonexistent")):
    return parse_config(f'[router]\ngateway = "127.0.0.1"\nlan_ip = "127.0.0.1"\n{text}\n[schedule]\n{schedule}\n'
                        f'[service]\nstate_dir = "{tmp / "state"}"\n', tmp / "natlink.toml")


@pytest.mark.parametrize("text, schedule, jobs", [
    (MAPPING + PROBE_CFG, "", {MAPPINGS: 600, PUBLIC_IP: 60, DDNS: 300, PROBE: 900}),
    (MAPPING + PROBE_CFG, 'probe = 0', {MAPPINGS: 600, PUBLIC_IP: 60, DDNS: 300}),
    (MAPPING, 'mappings = 0\npublic_ip = 0', {DDNS: 300}),
    (MAPPING, 'ddns = 0', {MAPPINGS: 600, PUBLIC_IP: 60}),
    (ECHO + DDNS_CFG, "", {DDNS: 300}),  # DDNS-only on echo sources: no router poll, no mappings job
    (DDNS_CFG, "", {PUBLIC_IP: 60, DDNS: 300}),  # the default sources include the router
    (MAPPING + PROBE_CFG, 'probe = "0s"', {MAPPINGS: 600, PUBLIC_IP: 60, DDNS: 300}),
])
def test_job_intervals(text, schedule, jobs):
    assert job_intervals(cfg(text, schedule), owned_mappings=False) == jobs


def test_mappings_left_on_the_router_keep_the_mappings_job():
    assert set(job_intervals(cfg(ECHO + DDNS_CFG), owned_mappings=True)) == {MAPPINGS, PUBLIC_IP, DDNS}


def test_zero_is_never_but_too_fast_is_rejected():
    assert cfg(MAPPING, "ddns = 0").schedule.ddns == 0
    with pytest.raises(ConfigError, match="too often"):
        cfg(MAPPING, 'ddns = "10s"')
    with pytest.raises(ConfigError, match="nat_timeout_max: must be more than 0"):
        parse_config('[doctor]\nnat_timeout_max = 0\n')


@pytest.mark.parametrize("steps, changes", [
    ([False, False, False, False, True], [None, None, "lost", None, "restored"]),
    ([False, True, False, True], [None, None, None, None]),  # never three in a row: quiet
    ([True, True], [None, None]),
])
def test_streak(steps, changes):
    streak, seen = Streak(), []
    for ok in steps:
        streak, change = streak_step(streak, ok, 3)
        seen.append(change)
    assert seen == changes


def test_ipv6_prefix():
    assert ipv6_prefix("2001:db8:1:2::10") == "2001:db8:1:2::/64"
    assert ipv6_prefix(None) is None and ipv6_prefix("not-an-ip") is None


def test_reload_adds_drops_and_reschedules_on_a_real_scheduler(tmp_path: Path):
    from apscheduler.schedulers.background import BackgroundScheduler

    svc = Service(cfg(MAPPING + PROBE_CFG, 'probe = "15m"\npublic_ip = "1m"', tmp_path), events=False)
    svc.scheduler = BackgroundScheduler()
    far = None  # paused scheduler: nothing runs, we only read the triggers
    for slot in svc.slots.values():
        slot.attach(svc.scheduler, far)
    svc.scheduler.start(paused=True)
    try:
        def interval(name: str) -> float | None:
            job = svc.scheduler.get_job(name)
            return None if job is None else job.trigger.interval.total_seconds()

        assert (interval(PROBE), interval(PUBLIC_IP)) == (900, 60)
        svc.cfg = cfg(MAPPING + PROBE_CFG, 'probe = 0\npublic_ip = "2m"', tmp_path)
        svc._apply_intervals()
        assert interval(PROBE) is None and PROBE not in svc.slots  # 0 = never, not every second
        assert interval(PUBLIC_IP) == 120
        svc.cfg = cfg(MAPPING + PROBE_CFG, 'probe = "5m"', tmp_path)
        svc._apply_intervals()
        assert interval(PROBE) == 300 and PROBE in svc.slots  # added by the reload, no restart needed
        svc.cfg = cfg(ECHO + DDNS_CFG, "", tmp_path)
        svc._apply_intervals()
        assert set(svc.slots) == {DDNS} and interval(PUBLIC_IP) is None and interval(MAPPINGS) is None
    finally:
        for slot in svc.slots.values():
            slot.close()
        svc.scheduler.shutdown(wait=False)
