"""Prometheus text: the page from a health snapshot (pure), and the HTTP endpoint on loopback."""

from __future__ import annotations

import urllib.request

import pytest

from natlink.errors import NatlinkError
from natlink.service.metrics import LastOutcomes, MetricsServer, render

HEALTH = {
    "jobs": {
        "mappings": {"outcomes": {"changed": 1, "unchanged": 4}, "failures": 0, "last_success": 1700000000.5},
        "ddns": {"outcomes": {"failed": 2}, "failures": 2, "last_success": None},
    },
    "counters": {"public_ip_changes": 3, "event:announce": 7, "alerts": 1, "ddns_requests": 2},
}


def test_render():
    page = render(HEALTH, LastOutcomes(mappings_present=1, probes={"rdp/ipv4": True, "web/ipv4": False},
                                ddns={"home": True, "dyn": False}, public_ip_verdict="public"))
    lines = page.splitlines()
    for expected in [
        "natlink_up 1",
        'natlink_job_runs_total{job="mappings",outcome="changed"} 1',
        'natlink_job_runs_total{job="mappings",outcome="unchanged"} 4',
        'natlink_job_runs_total{job="ddns",outcome="failed"} 2',
        'natlink_job_consecutive_failures{job="ddns"} 2',
        'natlink_job_last_success_timestamp_seconds{job="mappings"} 1700000000.5',
        "natlink_public_ip_changes_total 3",
        'natlink_events_total{kind="announce"} 7',
        "natlink_ddns_requests_total 2",
        "natlink_mappings 1",
        'natlink_probe_reachable{probe="rdp/ipv4"} 1',
        'natlink_probe_reachable{probe="web/ipv4"} 0',
        'natlink_ddns_ok{entry="dyn"} 0',
        'natlink_public_ip_verdict{verdict="public"} 1',
        "# TYPE natlink_job_runs_total counter",
    ]:
        assert expected in lines, expected
    assert not any(line.startswith('natlink_job_last_success_timestamp_seconds{job="ddns"}') for line in lines)
    assert page.endswith("\n")


def test_label_values_are_escaped():
    page = render({"jobs": {'we"ird\\job': {"outcomes": {"ok": 1}}}}, LastOutcomes())
    assert 'natlink_job_runs_total{job="we\\"ird\\\\job",outcome="ok"} 1' in page.splitlines()


def test_endpoint_serves_the_page():
    server = MetricsServer("127.0.0.1:0", lambda: render(HEALTH, LastOutcomes())).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "natlink_public_ip_changes_total 3" in resp.read().decode()
    finally:
        server.stop()


def test_port_in_use_is_a_clear_error():
    first = MetricsServer("127.0.0.1:0", lambda: "").start()
    try:
        with pytest.raises(NatlinkError, match="cannot listen for metrics on 127.0.0.1"):
            MetricsServer(f"127.0.0.1:{first.port}", lambda: "").start()
    finally:
        first.stop()


@pytest.mark.parametrize("value, text", [(1796180412.25, "1796180412.25"), (1796180412.0, "1796180412"),
                                         (1796180412, "1796180412"), (0.5, "0.5"), (3, "3")])
def test_timestamps_and_counts_are_exact(value, text):
    page = render({"jobs": {"ddns": {"last_success": value, "outcomes": {}}}}, LastOutcomes())
    assert f'natlink_job_last_success_timestamp_seconds{{job="ddns"}} {text}' in page.splitlines()
