"""The service tells the truth (issue 16), against the lab's real parts: a DDNS entry stopped by badauth recovers
after its password file is fixed (one hint everywhere), `run --once` says what it did and pings the heartbeat URL,
SIGTERM during a provider request waits for it and logs one line, a DDNS-only service never touches the router,
and `natlink alert --test` reports each channel. Local HTTP servers in the WAN namespace stand in for the dyndns2
provider, the webhook, the heartbeat service and the IP echo service."""

from __future__ import annotations

import base64
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from natlink.ddns.policy import stopped_hint
from service_support import (
    ALERT_PORT, DYNDNS_PORT, dns_a, dyndns2_entry, job_done, rfc2136_entry, start_http_sink, start_natlink, wait_for,
    write_config,
)

pytestmark = pytest.mark.lab

ECHO_PORT = 8081
FIXED = "the-fixed-pass"


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"user:{password}".encode()).decode()


def natlink(lab, cfg: Path, *args: str):
    """The command's output unwrapped (wide COLUMNS: one line per line the command writes)."""
    return lab.run("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), *args], check=False, timeout=60,
                   env={"COLUMNS": "1000"})


def dyndns2_answer(req) -> tuple[int, str]:
    """A dyndns2 server: wrong credentials are "badauth" (HTTP 200), right ones "good <ip>"."""
    if req["auth"] != basic(FIXED):
        return 200, "badauth"
    return 200, f"good {req['query'].get('myip', [''])[0]}"


def test_badauth_recovers_after_the_password_file_is_fixed_with_one_hint(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    provider = start_http_sink(lab, DYNDNS_PORT, dyndns2_answer)
    alerts = start_http_sink(lab, ALERT_PORT, lambda req: (200, "ok"))
    cfg = write_config(lab, tmp_path, probe=False, ddns_rfc2136=False, extra=dyndns2_entry(lab, tmp_path))
    nl = start_natlink(lab, cfg)
    wait_for(lambda: any('"ddns-stopped"' in r["body"] for r in alerts.requests), 15, "the stop alert")
    hint = stopped_hint("dyn")
    stop_alert = next(json.loads(r["body"]) for r in alerts.requests if '"ddns-stopped"' in r["body"])
    assert stop_alert["hint"] == hint and stop_alert["subject"] == "ddns:dyn" and stop_alert["severity"] == "error"
    doc = json.loads(natlink(lab, cfg, "--json", "status").stdout)
    assert doc["ddns"][0]["stopped"] and doc["ddns"][0]["hint"] == hint
    assert hint in natlink(lab, cfg, "status").stdout
    assert hint in natlink(lab, cfg, "ddns", "dyn").stdout  # the one-shot command, same words
    assert stop_alert["message"].startswith("dyndns2 answered badauth") and hint not in stop_alert["message"]
    assert hint in nl.log
    assert len(provider.requests) == 1  # `natlink ddns` above sent nothing: the entry is stopped

    # The fix the hint asks for: a new value in the same file (its path, all the config says, is unchanged).
    (tmp_path / "dyn.password").write_text(FIXED + "\n")
    nl.signal(signal.SIGHUP)
    wait_for(lambda: any('"ddns-recovered"' in r["body"] for r in alerts.requests), 15, "the recovery alert")
    assert provider.requests[-1]["auth"] == basic(FIXED) and len(provider.requests) == 2
    doc = json.loads(natlink(lab, cfg, "--json", "status").stdout)
    assert not doc["ddns"][0]["stopped"] and doc["ddns"][0]["outcome"] == "good"
    assert doc["service"]["stopped_entries"] == {}
    state = (tmp_path / "state" / "ddns-dyn.json").read_text()
    assert FIXED not in state and "s3cret-pass" not in state and FIXED not in nl.log
    assert nl.stop()[0] == 0


def test_once_prints_what_it_did_json_is_one_document_and_the_heartbeat_is_pinged(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    answer = {"text": "good"}
    provider = start_http_sink(lab, DYNDNS_PORT, lambda req: (200, f"{answer['text']} {req['query']['myip'][0]}"))
    pings = start_http_sink(lab, ALERT_PORT, lambda req: (200, "OK"))
    beat = f"http://{lab.wan_host_ip}:{ALERT_PORT}/ping/5bf6e1c2"
    cfg = write_config(lab, tmp_path, probe=False, alerts=False, extra=dyndns2_entry(lab, tmp_path))
    cfg.write_text(cfg.read_text() + f'[service.alerts]\nheartbeat = "{beat}"\n')
    (tmp_path / "dyn.password").write_text(FIXED + "\n")

    first = natlink(lab, cfg, "run", "--once")
    assert first.returncode == 0, first.stderr
    out = first.stdout.splitlines()
    assert "mapping   rdp: add ok" in " ".join(out), out
    assert f"public IP: {lab.wan_ip} (public)" in out
    assert any(x.startswith("ddns      home (rfc2136): updated [good]") for x in out), out
    assert any(x.startswith("ddns      dyn (dyndns2): updated [good], 1 request(s)") for x in out), out
    assert out[-1] == "overall:   OK"
    assert dns_a(lab) == lab.wan_ip and len(provider.requests) == 1
    assert [r["path"] for r in pings.requests] == ["/ping/5bf6e1c2"]

    # --json: one document; nothing changed, so no provider request
    second = natlink(lab, cfg, "--json", "run", "--once")
    doc = json.loads(second.stdout)
    assert second.returncode == 0 and doc["ok"] and set(doc["jobs"]) == {"mappings", "ddns"}
    assert {e["name"]: e["action"] for e in doc["jobs"]["ddns"]["entries"]} == {"home": "skip", "dyn": "skip"}
    assert len(provider.requests) == 1

    # a failing round: exit 1, says what failed, promises no retry, pings /fail
    answer["text"] = "911"
    lab.ip_change("11.0.0.9")
    third = natlink(lab, cfg, "run", "--once")
    assert third.returncode == 1
    assert "FAILED" in third.stdout and "retry" not in (third.stdout + third.stderr).lower().replace("retries later", "")
    assert third.stdout.splitlines()[-1] == "overall:   FAILED (ddns)"
    assert pings.requests[-1]["path"] == "/ping/5bf6e1c2/fail" and "dyn" in pings.requests[-1]["body"]


def test_the_service_pings_the_heartbeat_on_success_and_at_once_on_failure(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    answer = {"text": "good"}
    start_http_sink(lab, DYNDNS_PORT, lambda req: (200, f"{answer['text']} {req['query']['myip'][0]}"))
    pings = start_http_sink(lab, ALERT_PORT, lambda req: (200, "OK"))
    cfg = write_config(lab, tmp_path, probe=False, alerts=False, ddns_rfc2136=False,
                       extra=dyndns2_entry(lab, tmp_path))
    cfg.write_text(cfg.read_text() + f'[service.alerts]\nheartbeat = "http://{lab.wan_host_ip}:{ALERT_PORT}/hc/u1"\n')
    nl = start_natlink(lab, cfg)
    wait_for(lambda: any(r["path"] == "/hc/u1" for r in pings.requests), 15, "the success ping")
    assert not any(r["path"].endswith("/fail") for r in pings.requests)
    answer["text"] = "911"  # the provider's maintenance answer: a transient failure
    lab.ip_change("11.0.0.9")
    wait_for(lambda: any(r["path"] == "/hc/u1/fail" for r in pings.requests), 15, "the failure ping")
    fail = next(r for r in pings.requests if r["path"] == "/hc/u1/fail")
    assert "dyn" in fail["body"] and "s3cret-pass" not in fail["body"]
    assert nl.stop()[0] == 0


def test_sigterm_waits_for_the_running_job_and_logs_one_line(lab, tmp_path):
    lab.tcp_service("lan", 3389)

    def slow(req) -> tuple[int, str]:
        time.sleep(2.5)  # the provider takes its time: the stop must wait, not cut the job off mid-request
        return 200, f"good {req['query']['myip'][0]}"

    provider = start_http_sink(lab, DYNDNS_PORT, slow)
    cfg = write_config(lab, tmp_path, probe=False, alerts=False, ddns_rfc2136=False, extra=dyndns2_entry(lab, tmp_path))
    nl = start_natlink(lab, cfg)
    wait_for(lambda: provider.requests, 15, "the provider request")
    before = len(nl.log.splitlines())
    code, took = nl.stop()
    assert code == 0, nl.log
    after = nl.log.splitlines()[before:]
    info = [x for x in after if " INFO " in x or " ERROR " in x or " WARNING " in x]
    stops = [x for x in info if "stopped in" in x]
    assert len(stops) == 1 and "waited for" in stops[0] and "ddns" in stops[0].split("waited for")[1], after
    assert not [x for x in info if " ERROR " in x], after
    assert "still running" not in nl.log
    state = json.loads((tmp_path / "state" / "ddns-dyn.json").read_text())
    assert state["last_outcome"] == "good"  # the job finished before the exit
    service = json.loads((tmp_path / "state" / "service.json").read_text())
    assert service["running"] is False and service["stopped"]


def test_ddns_only_on_an_echo_source_never_polls_the_router(lab, tmp_path):
    echo = start_http_sink(lab, ECHO_PORT, lambda req: (200, req["client"] + "\n"))
    state = tmp_path / "state"
    cfg = tmp_path / "natlink.toml"
    cfg.write_text(f"""
[public_ip]
sources = ["http://{lab.wan_host_ip}:{ECHO_PORT}/"]
{rfc2136_entry(lab)}
[schedule]
ddns = "30s"
jitter = 0

[service]
state_dir = "{state}"
""")
    nl = start_natlink(lab, cfg)
    wait_for(lambda: dns_a(lab) == lab.wan_ip, 15, "knot to publish the address the echo service saw")
    wait_for(lambda: job_done(nl, "ddns"), 5, "the ddns round to be recorded")
    time.sleep(1)
    service = json.loads((state / "service.json").read_text())
    assert set(service["jobs"]) == {"ddns"}, service["jobs"]
    assert echo.requests and not (state / "router.json").exists()
    assert "router" not in nl.log.lower().replace("router_", ""), nl.log
    assert nl.stop()[0] == 0


def test_alert_test_reports_each_channel(lab, tmp_path):
    sink = start_http_sink(lab, ALERT_PORT, lambda req: (404 if req["path"] == "/dead" else 200, "ok"))
    cfg = write_config(lab, tmp_path, probe=False)  # webhook http://<wan host>:8090/alert
    cfg.write_text(cfg.read_text() + f'heartbeat = "http://{lab.wan_host_ip}:{ALERT_PORT}/ping/abc"\n')
    result = natlink(lab, cfg, "alert", "--test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"webhook {lab.wan_host_ip}: ok", f"heartbeat {lab.wan_host_ip}: ok"]
    body = json.loads(next(r["body"] for r in sink.requests if r["path"] == "/alert"))
    assert body["event"] == "test" and body["source"] == "natlink"
    cfg.write_text(cfg.read_text().replace("/ping/abc", "/dead"))
    result = natlink(lab, cfg, "alert", "--test")
    assert result.returncode == 1 and f"heartbeat {lab.wan_host_ip}: FAILED: answered HTTP 404" in result.stdout
