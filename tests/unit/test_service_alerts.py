"""Alerts: rate limiting, the webhook (a local HTTP server) and the command hook (a real subprocess)."""

from __future__ import annotations

import json
import sys
import time


from natlink.config import AlertsCfg
from natlink.service.alerts import Alert, Alerter


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_webhook_gets_json_and_repeats_are_rate_limited(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sent: dict[str, float] = {}
    alerter = Alerter(AlertsCfg(webhook=httpserver.url_for("/hook"), min_interval=600), sent)
    now = time.time()
    assert alerter.raise_(Alert("ddns:home", "fatal", "provider answered badauth", "fix the password", at=now))
    assert not alerter.raise_(Alert("ddns:home", "fatal", "provider answered badauth", at=now + 5))  # limited
    assert alerter.raise_(Alert("ddns:other", "fatal", "provider answered nohost", at=now + 5))  # other subject
    assert alerter.raise_(Alert("ddns:home", "fatal", "again", at=now + 601))  # after min_interval
    assert wait_until(lambda: len(httpserver.log) == 3)
    bodies = sorted((json.loads(req.get_data()) for req, _ in httpserver.log), key=lambda b: b["at"])
    assert bodies[0]["subject"] == "ddns:home" and bodies[0]["kind"] == "fatal"
    assert bodies[0]["message"] == "provider answered badauth" and bodies[0]["hint"] == "fix the password"
    assert bodies[0]["source"] == "natlink" and bodies[0]["host"]
    assert all(req.headers["Content-Type"] == "application/json" for req, _ in httpserver.log)
    assert set(sent) == {"ddns:home:fatal", "ddns:other:fatal"}


def test_command_hook_gets_the_alert_on_stdin(tmp_path):
    out = tmp_path / "alert.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    alerter = Alerter(AlertsCfg(command=(sys.executable, "-c", script), min_interval=0), {})
    alerter.raise_(Alert("job:mappings", "failure", "mappings failed 3 times in a row: no router", "check it"))
    assert wait_until(lambda: out.exists() and out.read_text())
    doc = json.loads(out.read_text())
    assert doc["subject"] == "job:mappings" and "3 times" in doc["message"]


def test_a_failing_hook_is_one_log_line_and_never_raises(caplog, tmp_path):
    alerter = Alerter(AlertsCfg(webhook="http://127.0.0.1:9/nothing-listens?token=SECRET",
                                command=(str(tmp_path / "missing"),), min_interval=0), {})
    alert = Alert("probe:rdp", "failure", "not reachable")
    alerter.deliver(alert)  # synchronously, so the log can be checked
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert "alert webhook at 127.0.0.1 failed" in errors[0]
    assert "SECRET" not in " ".join(errors)  # the URL may carry a token: only the host is logged
    assert "alert command" in errors[1]


def test_without_hooks_alerts_are_only_logged(caplog):
    caplog.set_level("WARNING")
    alerter = Alerter(AlertsCfg(), {})
    assert not alerter.enabled
    assert alerter.raise_(Alert("public-ip", "change", "public IP changed from 1.2.3.4 to 5.6.7.8")) is False
    assert "alert: public-ip: public IP changed from 1.2.3.4 to 5.6.7.8" in caplog.text


def test_alert_line():
    assert Alert("ddns:home", "fatal", "badauth", "fix it").line() == "ddns:home: badauth — fix it"
    assert Alert("x", "change", "m").key == "x:change"
