"""Pure decisions of the service, as tables."""

from __future__ import annotations

import pytest

from natlink.service.policy import (
    ANNOUNCE, DDNS, HOST_ADDRESS, MAPPINGS, PROBE, PUBLIC_IP, RouterObservation as Obs, alert_allowed,
    failure_alert_due, jobs_after_poll, jobs_for_event, mappings_interval, recovered, retry_delay, router_rebooted,
)


@pytest.mark.parametrize("prev, cur, rebooted", [
    (None, Obs("1.2.3.4", 100, 10), False),  # nothing to compare with
    (Obs("1.2.3.4", None, 0), Obs("1.2.3.4", 5, 10), False),  # UPnP has no epoch
    (Obs("1.2.3.4", 100, 0), Obs("1.2.3.4", 160, 60), False),  # epoch kept pace
    (Obs("1.2.3.4", 100, 0), Obs("1.2.3.4", 158, 60), False),  # router clock a little slow: still fine
    (Obs("1.2.3.4", 100, 0), Obs("1.2.3.4", 3, 60), True),  # restarted: epoch near 0
    (Obs("1.2.3.4", 100, 0), Obs("1.2.3.4", 99, 0.5), False),  # tiny step back within the 2 s slack
    (Obs("1.2.3.4", 1000, 0), Obs("1.2.3.4", 1010, 600), True),  # epoch nearly stopped: it restarted meanwhile
    (Obs("1.2.3.4", 100, 10), Obs("1.2.3.4", 100, 5), False),  # monotonic clock cannot go back; treat as 0 s
])
def test_router_rebooted(prev, cur, rebooted):
    assert router_rebooted(prev, cur) is rebooted


@pytest.mark.parametrize("prev, cur, jobs, why", [
    (None, Obs("1.2.3.4", 100, 0), set(), ""),  # first look: startup runs everything anyway
    (Obs("1.2.3.4", 100, 0), Obs(None, None, 10), set(), ""),  # router silent: nothing to act on
    (Obs("1.2.3.4", 100, 0), Obs("1.2.3.4", 110, 10), set(), ""),  # steady
    (Obs("1.2.3.4", 100, 0), Obs("5.6.7.8", 1, 10), {DDNS, PROBE, MAPPINGS}, "1.2.3.4 -> 5.6.7.8"),
    (Obs("", None, 0), Obs("5.6.7.8", None, 10), {DDNS, PROBE, MAPPINGS}, "none -> 5.6.7.8"),  # got connected
    (Obs("1.2.3.4", None, 0), Obs("", None, 10), {DDNS, PROBE, MAPPINGS}, "1.2.3.4 -> none"),  # lost connection
    (Obs("1.2.3.4", 5000, 0), Obs("1.2.3.4", 2, 10), {MAPPINGS, PROBE}, "restarted"),
    (Obs(None, None, 0), Obs("1.2.3.4", 2, 10), {MAPPINGS, DDNS, PROBE}, "answers again"),
])
def test_jobs_after_poll(prev, cur, jobs, why):
    run, reason = jobs_after_poll(prev, cur)
    assert run == jobs
    assert why in reason
    assert bool(reason) == bool(jobs)


@pytest.mark.parametrize("kind, jobs", [
    (ANNOUNCE, {PUBLIC_IP, MAPPINGS}),
    (HOST_ADDRESS, {PUBLIC_IP, MAPPINGS, DDNS}),  # an IPv6 prefix / interface: IPv4 change (AAAA, A)
    ("something-else", set()),
])
def test_jobs_for_event(kind, jobs):
    assert jobs_for_event(kind) == jobs


@pytest.mark.parametrize("failures, interval, delay", [
    (0, 300, 300), (1, 300, 10), (2, 300, 20), (3, 300, 40), (5, 300, 160), (6, 300, 300), (60, 300, 300),
    (1, 5, 5),  # never later than... never *later* than the interval either way
])
def test_retry_delay(failures, interval, delay):
    assert retry_delay(failures, interval) == delay


@pytest.mark.parametrize("configured, leases, expected", [
    (600, [3600], 600),
    (600, [600], 200),  # renew-at-half needs a run in the second half of every lease
    (600, [0], 600),  # permanent mappings: the configured interval
    (600, [], 600),
    (600, [60], 30),  # never hammer the router more often than every 30 s
    (600, [3600, 900, 0], 300),
])
def test_mappings_interval(configured, leases, expected):
    assert mappings_interval(configured, leases) == expected


@pytest.mark.parametrize("failures, due", [(0, False), (1, False), (2, False), (3, True), (10, True)])
def test_failure_alert_due(failures, due):
    assert failure_alert_due(failures) is due


@pytest.mark.parametrize("prev, now, rec", [(3, 0, True), (5, 0, True), (2, 0, False), (0, 0, False), (3, 4, False)])
def test_recovered(prev, now, rec):
    assert recovered(prev, now) is rec


@pytest.mark.parametrize("sent, key, now, allowed", [
    ({}, "ddns:home:fatal", 1000, True),
    ({"ddns:home:fatal": 900}, "ddns:home:fatal", 1000, False),  # 100 s ago < 600
    ({"ddns:home:fatal": 300}, "ddns:home:fatal", 1000, True),  # 700 s ago
    ({"ddns:home:fatal": 900}, "ddns:other:fatal", 1000, True),  # other subject
    ({"job:mappings:failure": 990}, "job:mappings:recovered", 1000, True),  # other kind
    ({"ddns:home:fatal": 5000}, "ddns:home:fatal", 1000, True),  # clock went back: do not mute
])
def test_alert_allowed(sent, key, now, allowed):
    assert alert_allowed(sent, key, now, 600) is allowed
