"""The health record, its persistence, and `liveness` (pure) as a table."""

from __future__ import annotations

import os

import pytest

from natlink.service.health import STALE_AFTER, Health, liveness, pid_alive
from natlink.state import StateStore


@pytest.mark.parametrize("doc, alive, state", [
    (None, False, "never"),
    ({}, False, "never"),
    ({"mode": "oneshot", "running": False}, False, "oneshot"),
    ({"running": False, "heartbeat": 1000}, False, "stopped"),
    ({"running": True, "heartbeat": 1000}, False, "dead"),  # kill -9: no clean stop recorded
    ({"running": True, "heartbeat": 1000}, True, "running"),
    ({"running": True, "heartbeat": 1000 - STALE_AFTER - 1}, True, "hung"),
    ({"running": True}, True, "hung"),
])
def test_liveness(doc, alive, state):
    assert liveness(doc, 1000, alive) == state


def test_pid_alive():
    assert pid_alive(os.getpid()) is ("natlink" in open(f"/proc/{os.getpid()}/cmdline", "rb").read().decode(errors="replace"))
    assert pid_alive(None) is False and pid_alive(-1) is False and pid_alive("12") is False
    assert pid_alive(2 ** 22 + 12345) is False  # above pid_max: never a live process


def test_records_and_persistence(tmp_path):
    store = StateStore(tmp_path)
    h = Health(store, config_path="/etc/natlink/config.toml")
    h.started("ddns", "startup")
    assert h.finished("ddns", False, "timeout") == 0
    assert h.finished("ddns", False, "timeout") == 1
    assert h.job("ddns").failures == 2 and h.job("ddns").last_error == "timeout"
    assert h.finished("ddns", True, None, "updated") == 2
    rec = h.job("ddns")
    assert (rec.failures, rec.runs, rec.last_error, rec.outcomes) == (0, 3, None, {"failed": 2, "updated": 1})
    h.count("public_ip_changes")
    h.alerts_sent["ddns:home:fatal"] = 123.0
    h.save()
    doc = store.load("service")
    assert doc["running"] is True and doc["pid"] == os.getpid() and doc["counters"] == {"public_ip_changes": 1}
    assert doc["jobs"]["ddns"]["last_reason"] == "startup"
    h.mark_stopped()
    assert store.load("service")["running"] is False
    # the next start keeps the alert history (a crash loop must not re-send) and knows the last stop was clean
    h2 = Health(store)
    assert h2.alerts_sent == {"ddns:home:fatal": 123.0}
    assert h2.doc["previous_clean_stop"] is True
