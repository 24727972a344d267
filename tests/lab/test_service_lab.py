"""`natlink run` on the lab's LAN host against the real parts: miniupnpd (UPnP/NAT-PMP/PCP, real NAT), knot
(RFC 2136), natlink's reflector on the WAN host, and local HTTP servers standing in for a dyndns2 provider and
an alert webhook. The schedules are 10 minutes long, so anything that happens within seconds was caused by
an event, not by polling."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from service_support import (
    ALERT_PORT, DYNDNS_PORT, dns_a, dyndns2_entry, job_done, router_table, start_http_sink, start_natlink,
    start_reflector, wait_for, wan_connects, write_config,
)

pytestmark = pytest.mark.lab


def status(lab, cfg: Path) -> dict:
    out = lab.run("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), "--json", "status"], check=False)
    return json.loads(out.stdout)


def test_mapping_dns_probe_then_ip_change_and_router_reboot(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    start_reflector(lab)
    alerts = start_http_sink(lab, ALERT_PORT, lambda req: (200, "ok"))
    cfg = write_config(lab, tmp_path)
    nl = start_natlink(lab, cfg)

    wait_for(lambda: wan_connects(lab), 15, "the mapping to work from the WAN host")
    wait_for(lambda: dns_a(lab) == lab.wan_ip, 15, "knot to publish the router's address")
    wait_for(lambda: job_done(nl, "probe"), 15, "the first probe")
    doc = status(lab, cfg)
    assert doc["service"]["state"] == "running"
    assert doc["probes"]["results"][0]["verdict"] == "verified", doc["probes"]
    assert doc["public_ip"]["public_ipv4"] == lab.wan_ip and doc["public_ip"]["verdict"] == "public"
    assert doc["mappings"][0]["present"] and doc["ddns"][0]["published"] == {"ipv4": lab.wan_ip}
    assert doc["ok"], doc["problems"]

    # ISP reconnect: DNS follows although no job is due for 10 minutes.
    t0 = time.monotonic()
    lab.ip_change("11.0.0.9")
    wait_for(lambda: dns_a(lab) == "11.0.0.9", 10, "DNS to follow the new address")
    print(f"ip-change -> knot answers the new A record: {time.monotonic() - t0:.3f} s")
    wait_for(lambda: wan_connects(lab), 10, "the mapping on the new address")
    wait_for(lambda: any("public IP changed" in r["body"] for r in alerts.requests), 5, "the change alert")

    # Router reboot: its table is flushed; the mapping is back within seconds.
    t0, wall0 = time.monotonic(), time.time()
    lab.router_reboot()
    wait_for(lambda: wan_connects(lab), 10, "the mapping after the router reboot")
    print(f"router-reboot -> TCP connect from WAN works: {time.monotonic() - t0:.3f} s")
    # re-created by natlink (not left over): its record is from after the reboot
    wait_for(lambda: (nl.state("mappings") or {}).get("rdp", {}).get("granted_at", 0) >= wall0, 5, "the new record")

    code, took = nl.stop()
    assert code == 0, nl.log
    assert "Traceback" not in nl.log
    assert status(lab, cfg)["service"]["state"] == "stopped"


def test_badauth_stops_that_entry_alerts_once_and_the_rest_keep_working(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    provider = start_http_sink(lab, DYNDNS_PORT, lambda req: (200, "badauth"))
    alerts = start_http_sink(lab, ALERT_PORT, lambda req: (200, "ok"))
    cfg = write_config(lab, tmp_path, probe=False, extra=dyndns2_entry(lab, tmp_path))
    nl = start_natlink(lab, cfg)

    wait_for(lambda: dns_a(lab) == lab.wan_ip, 15, "the rfc2136 entry to publish")
    wait_for(lambda: provider.requests, 15, "the dyndns2 request")
    lab.ip_change("11.0.0.9")  # the healthy entry keeps following; the stopped one is not asked again
    wait_for(lambda: dns_a(lab) == "11.0.0.9", 10, "the rfc2136 entry to follow the new address")
    wait_for(lambda: job_done(nl, "ddns", after=time.time() - 0.5) and not nl.proc.poll(), 5, "ddns round")
    time.sleep(0.5)

    assert len(provider.requests) == 1, provider.requests
    assert provider.requests[0]["query"]["hostname"] == ["dyn.home.example"]
    fatal = [json.loads(r["body"]) for r in alerts.requests if '"ddns-stopped"' in r["body"]]
    assert len(fatal) == 1, alerts.requests
    assert fatal[0]["subject"] == "ddns:dyn" and "badauth" in fatal[0]["message"]
    assert "fix [[ddns]] 'dyn'" in fatal[0]["hint"]
    assert "s3cret-pass" not in json.dumps(alerts.requests) and "s3cret-pass" not in nl.log
    doc = status(lab, cfg)
    entries = {d["name"]: d for d in doc["ddns"]}
    assert entries["dyn"]["stopped"] and entries["dyn"]["outcome"] == "badauth"
    assert entries["home"]["published"] == {"ipv4": "11.0.0.9"} and not entries["home"]["stopped"]
    assert nl.proc.poll() is None  # the service is still running
    assert nl.stop()[0] == 0


def test_sighup_with_a_broken_config_keeps_the_old_one(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    lab.tcp_service("lan", 8443)
    cfg = write_config(lab, tmp_path, probe=False, alerts=False)
    nl = start_natlink(lab, cfg)
    wait_for(lambda: dns_a(lab) == lab.wan_ip, 15, "DNS published")
    good = cfg.read_text()

    cfg.write_text(good.replace('external_port = 3390', 'external_port = "not a port"'))
    nl.signal(signal.SIGHUP)
    wait_for(lambda: "reload rejected" in nl.log, 5, "the rejection line")
    line = next(x for x in nl.log.splitlines() if "reload rejected" in x)
    assert "external_port" in line and "Traceback" not in nl.log
    assert nl.proc.poll() is None
    lab.ip_change("11.0.0.9")  # the old config still works
    wait_for(lambda: dns_a(lab) == "11.0.0.9", 10, "DNS to follow with the old config")

    # a valid change is applied: a second mapping appears
    cfg.write_text(good + '\n[[mapping]]\nname = "web"\nprotocol = "tcp"\nexternal_port = 8443\n')
    nl.signal(signal.SIGHUP)
    wait_for(lambda: wan_connects(lab, 8443), 10, "the mapping added by the reload")
    assert nl.stop()[0] == 0


def test_sigterm_exits_0_and_unmap_on_stop_restores_the_router_table(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    other = lab.run("lan2", ["upnpc", "-u", lab.igd_url, "-e", "someone else", "-a", lab.lan2_ip, "2222", "2222",
                             "TCP"], check=False)
    assert other.returncode == 0, other.stdout
    before = router_table(lab)
    cfg = write_config(lab, tmp_path, probe=False, alerts=False, unmap_on_stop=True)
    nl = start_natlink(lab, cfg)
    wait_for(lambda: wan_connects(lab), 15, "the mapping")
    assert router_table(lab) != before
    code, took = nl.stop()
    print(f"SIGTERM -> exit: {took:.3f} s")
    assert code == 0, nl.log
    assert took < 5  # generous; the figure itself is in bench/service_bench.py
    assert router_table(lab) == before  # only natlink's own mapping is gone
    assert not wan_connects(lab)


def test_kill_9_and_restart_sends_no_duplicate_update_and_reconciles(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    provider = start_http_sink(lab, DYNDNS_PORT, lambda req: (200, f"good {req['query'].get('myip', [''])[0]}"))
    cfg = write_config(lab, tmp_path, probe=False, alerts=False, ddns_rfc2136=False,
                       extra=dyndns2_entry(lab, tmp_path))
    nl = start_natlink(lab, cfg)
    wait_for(lambda: provider.requests and wan_connects(lab), 15, "first update and mapping")
    wait_for(lambda: job_done(nl, "ddns"), 5, "the ddns round to be recorded")
    nl.proc.kill()  # SIGKILL mid-run: no clean stop
    nl.proc.wait(5)
    assert status(lab, cfg)["service"]["state"] == "dead"

    # while it is down, the router reboots and forgets the mapping
    lab.router_reboot()
    assert not wan_connects(lab)

    started = time.time()
    nl2 = start_natlink(lab, cfg)
    wait_for(lambda: wan_connects(lab), 15, "the mapping to be reconciled after the restart")
    wait_for(lambda: job_done(nl2, "ddns", after=started), 10, "the first ddns round after the restart")
    assert len(provider.requests) == 1, provider.requests  # the state file says it is already published
    assert status(lab, cfg)["service"]["state"] == "running"
    assert nl2.stop()[0] == 0


def test_once_runs_one_round_and_exits(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    start_reflector(lab)
    cfg = write_config(lab, tmp_path, alerts=False)
    result = lab.run("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), "run", "--once"], check=False,
                     timeout=60)
    assert result.returncode == 0, result.stderr
    assert wan_connects(lab) and dns_a(lab) == lab.wan_ip
    doc = status(lab, cfg)
    assert doc["service"]["state"] == "oneshot" and doc["probes"]["results"][0]["ok"]


def test_sd_notify_and_metrics(lab, tmp_path):
    """Under a stand-in for systemd's notify socket: READY=1, STATUS and WATCHDOG pings arrive; the metrics
    endpoint (on the LAN host's loopback) serves the job outcomes and the mapping count."""
    import socket

    lab.tcp_service("lan", 3389)
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # AF_UNIX paths are not per network namespace
    sock.bind(sock_path)
    sock.settimeout(10)
    cfg = write_config(lab, tmp_path, probe=False, alerts=False, ddns_rfc2136=False)
    cfg.write_text(cfg.read_text().replace('unmap_on_stop = false', 'unmap_on_stop = false\nmetrics = "127.0.0.1:9877"'))
    nl = start_natlink(lab, cfg, env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"})
    try:
        messages = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(m == "WATCHDOG=1" for m in messages):
            messages.append(sock.recv(4096).decode())
        assert messages[0].startswith("READY=1\nMAINPID=")
        assert "WATCHDOG=1" in messages  # pinged at half of WATCHDOG_USEC
        wait_for(lambda: job_done(nl, "mappings"), 10, "the mappings job")
        page = lab.run("lan", [sys.executable, "-c", "import urllib.request; print(urllib.request.urlopen("
                               "'http://127.0.0.1:9877/metrics', timeout=5).read().decode())"]).stdout
        assert 'natlink_job_runs_total{job="mappings",outcome="changed"} 1' in page, page
        assert "natlink_mappings 1" in page and "natlink_up 1" in page
        code, _ = nl.stop()
        assert code == 0
        rest = []
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            while True:
                rest.append(sock.recv(4096).decode())
        assert "STOPPING=1" in rest
    finally:
        sock.close()
