"""`natlink run` with UPnP only: miniupnpd's GENA NOTIFY on WANIPConnection ExternalIPAddress triggers the
router poll. The schedules are 10 minutes long, so a reaction within a second was caused by an event; the
health counter event:gena and the log line show it was the UPnP event path."""

from __future__ import annotations

import time

import pytest

from service_support import dns_a, start_natlink, wait_for, write_config

pytestmark = pytest.mark.lab


def gena_events(nl) -> int:
    return ((nl.state("service") or {}).get("counters") or {}).get("event:gena", 0)


def test_upnp_event_on_ip_change_triggers_the_router_poll(lab, tmp_path):
    lab.tcp_service("lan", 3389)
    cfg = write_config(lab, tmp_path, probe=False, alerts=False)
    cfg.write_text(cfg.read_text().replace("[router]\n", '[router]\nprotocols = ["upnp"]\n', 1))
    nl = start_natlink(lab, cfg)
    try:
        wait_for(lambda: dns_a(lab) == lab.wan_ip, 15, "knot to publish the router's address")
        wait_for(lambda: "subscribed to UPnP events" in nl.log, 5, "the GENA subscription")
        assert gena_events(nl) == 0  # the initial NOTIFY and our own mapping changes are not triggers

        old = lab.wan_ip
        t0 = time.monotonic()
        lab.ip_change("11.0.0.9")
        wait_for(lambda: gena_events(nl) >= 1, 1.0, "the service to count a GENA event")
        noticed = time.monotonic() - t0
        wait_for(lambda: dns_a(lab) == "11.0.0.9", 5, "DNS to follow the new address")
        print(f"ip-change -> GENA event counted: {noticed:.3f} s; DNS followed: {time.monotonic() - t0:.3f} s")
        assert "UPnP event (SEQ" in nl.log and f"ExternalIPAddress {old} -> 11.0.0.9" in nl.log
        assert (nl.state("service") or {})["router"]["protocol"] == "upnp"
    finally:
        code, _ = nl.stop()
    assert code == 0, nl.log
    assert "Traceback" not in nl.log
    assert "GENA NOTIFY refused" not in nl.log
