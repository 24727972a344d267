"""Alerts: rate limiting, the webhook (a local HTTP server) and the command hook (a real subprocess)."""

from __future__ import annotations

import json
import sys
import time


from natlink.config import AlertsCfg
import pytest

from natlink.service.alerts import Alert, Alerter, heartbeat_url, ping_heartbeat
from waiting import wait_until


def test_webhook_gets_json_and_repeats_are_rate_limited(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sent: dict[str, float] = {}
    alerter = Alerter(AlertsCfg(webhook=httpserver.url_for("/hook"), min_interval=600), sent)
    now = time.time()
    assert alerter.raise_(Alert("ddns-stopped", "ddns:home", "provider answered badauth", "fix the password", at=now))
    assert not alerter.raise_(Alert("ddns-stopped", "ddns:home", "provider answered badauth", at=now + 5))  # limited
    assert alerter.raise_(Alert("ddns-stopped", "ddns:other", "provider answered nohost", at=now + 5))  # other subject
    assert alerter.raise_(Alert("ddns-stopped", "ddns:home", "again", at=now + 601))  # after min_interval
    assert wait_until(lambda: len(httpserver.log) == 3)
    bodies = sorted((json.loads(req.get_data()) for req, _ in httpserver.log), key=lambda b: b["at"])
    assert bodies[0]["subject"] == "ddns:home" and bodies[0]["event"] == "ddns-stopped"
    assert bodies[0]["message"] == "provider answered badauth" and bodies[0]["hint"] == "fix the password"
    assert bodies[0]["source"] == "natlink" and bodies[0]["host"] and bodies[0]["severity"] == "error"
    assert set(bodies[0]) == {"source", "schema", "event", "severity", "subject", "message", "hint", "host", "at"}
    assert all(req.headers["Content-Type"] == "application/json" for req, _ in httpserver.log)
    assert set(sent) == {"ddns-stopped:ddns:home", "ddns-stopped:ddns:other"}


def test_command_hook_gets_the_alert_on_stdin(tmp_path):
    out = tmp_path / "alert.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    alerter = Alerter(AlertsCfg(command=(sys.executable, "-c", script), min_interval=0), {})
    alerter.raise_(Alert("mapping-lost", "mapping:rdp", "mappings failed 3 times in a row: no router", "check it"))
    assert wait_until(lambda: out.exists() and out.read_text())
    doc = json.loads(out.read_text())
    assert doc["subject"] == "mapping:rdp" and "3 times" in doc["message"]


def test_a_failing_hook_is_one_log_line_and_never_raises(caplog, tmp_path):
    alerter = Alerter(AlertsCfg(webhook="http://127.0.0.1:9/nothing-listens?token=SECRET",
                                command=(str(tmp_path / "missing"),), min_interval=0), {})
    alert = Alert("reachability-lost", "probe:rdp", "not reachable")
    results = alerter.deliver(alert)  # synchronously, so the log can be checked
    assert results == {"webhook 127.0.0.1": "failed: ConnectionError",
                       f"command {tmp_path / 'missing'}": results[f"command {tmp_path / 'missing'}"]}
    assert all(results.values())
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert "alert webhook at 127.0.0.1 failed" in errors[0]
    assert "SECRET" not in " ".join(errors)  # the URL may carry a token: only the host is logged
    assert "alert command" in errors[1]


def test_without_hooks_alerts_are_only_logged(caplog):
    caplog.set_level("WARNING")
    alerter = Alerter(AlertsCfg(), {})
    assert not alerter.enabled
    assert alerter.raise_(Alert("public-ip-changed", "public-ip", "public IP changed from 1.2.3.4 to 5.6.7.8")) is False
    assert "alert: public-ip-changed public-ip: public IP changed from 1.2.3.4 to 5.6.7.8" in caplog.text


def test_alert_line():
    assert Alert("ddns-stopped", "ddns:home", "badauth", "fix it").line() == "ddns-stopped ddns:home: badauth — fix it"
    assert Alert("public-ip-changed", "x", "m").key == "public-ip-changed:x"
    with pytest.raises(ValueError):
        Alert("something-else", "x", "m")


@pytest.mark.parametrize("url, ok, expected", [
    ("https://hc-ping.com/0f3c", True, "https://hc-ping.com/0f3c"),
    ("https://hc-ping.com/0f3c", False, "https://hc-ping.com/0f3c/fail"),
    ("https://hc-ping.com/0f3c/", False, "https://hc-ping.com/0f3c/fail"),
    ("https://kuma.example/api/push/Ab1?status=up&msg=OK", True, "https://kuma.example/api/push/Ab1?status=up&msg=OK"),
    ("https://kuma.example/api/push/Ab1?status=up&msg=OK", False, "https://kuma.example/api/push/Ab1?status=down&msg=OK"),
])
def test_heartbeat_url(url, ok, expected):
    assert heartbeat_url(url, ok) == expected


def test_heartbeat_pings_success_and_failure(httpserver):
    httpserver.expect_request("/ping/abc", method="POST").respond_with_data("OK")
    httpserver.expect_request("/ping/abc/fail", method="POST").respond_with_data("OK")
    url = httpserver.url_for("/ping/abc")
    assert ping_heartbeat(url, True, "all good") is None
    assert ping_heartbeat(url, False, "ddns failing") is None
    assert [(r.path, r.get_data(as_text=True)) for r, _ in httpserver.log] == [
        ("/ping/abc", "all good"), ("/ping/abc/fail", "ddns failing")]


def test_heartbeat_refused_is_reported_without_the_token(httpserver, caplog):
    httpserver.expect_request("/ping/tok-123", method="POST").respond_with_data("nope", status=404)
    assert ping_heartbeat(httpserver.url_for("/ping/tok-123"), True, "x") == "answered HTTP 404"
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("natlink"))
    assert "tok-123" not in ours and "heartbeat at localhost answered HTTP 404" in ours


def test_alert_test_command_reports_each_channel(httpserver, tmp_path, capsys):
    from natlink.cli import main

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    httpserver.expect_request("/hc/uuid-1", method="POST").respond_with_data("OK")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[service]\nstate_dir = "{tmp_path / "s"}"\n[service.alerts]\n'
                   f'webhook = "{httpserver.url_for("/hook")}"\ncommand = ["{tmp_path / "missing-hook"}"]\n'
                   f'heartbeat = "{httpserver.url_for("/hc/uuid-1")}"\n')
    assert main(["-c", str(cfg), "alert", "--test"]) == 1  # the command does not exist
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "webhook localhost: ok" and out[2] == "heartbeat localhost: ok"
    assert out[1].startswith(f"command {tmp_path / 'missing-hook'}: FAILED")
    body = json.loads(httpserver.log[0][0].get_data())
    assert body["event"] == "test" and body["severity"] == "info"
    assert httpserver.log[1][0].path == "/hc/uuid-1"


def test_alert_test_without_channels_says_so(tmp_path, capsys):
    from natlink.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[service]\nstate_dir = "{tmp_path / "s"}"\n')
    assert main(["-c", str(cfg), "alert", "--test"]) == 1
    assert "no alert channel is configured" in capsys.readouterr().err
