"""--measure-nat-timeout against the real reflector through the lab router's NAT (conntrack timeout lowered)."""

from __future__ import annotations

import pytest

from doctor_setup import doctor, healthy_lab

pytestmark = pytest.mark.lab

NAT_TIMEOUT = 20


@pytest.mark.timeout(180)
def test_measures_the_nat_idle_timeout_and_recommends_a_keepalive_below_it(lab) -> None:
    config = healthy_lab(lab)
    lab.set_conntrack_timeout(NAT_TIMEOUT, loose=False)  # loose=False: forgotten flows are really dead
    run = doctor(lab, config, "--measure-nat-timeout", "--max", "60", timeout=120)
    measured = run.doc["nat_timeout"]
    assert measured["estimate"] is not None, run.doc
    assert abs(measured["estimate"] - NAT_TIMEOUT) <= 0.25 * NAT_TIMEOUT, measured
    assert measured["alive_max"] < NAT_TIMEOUT <= measured["dead_min"] + 1
    assert measured["recommended_keepalive"] < measured["alive_max"]
    check = run.one(9, "nat-timeout")
    assert check["status"] == "warn" and f"every {measured['recommended_keepalive']} s" in check["fix"]
    keepalive = run.one(9, "keepalive")  # tcp_keepalive_time 7200 s is far above 20 s
    assert keepalive["status"] == "warn" and keepalive["data"]["nat_timeout"] == pytest.approx(measured["estimate"], abs=0.1)
    # The measurement is remembered: a later plain run judges the keepalive against it.
    later = doctor(lab, config)
    assert later.one(9, "keepalive")["data"]["nat_timeout"] == pytest.approx(measured["estimate"], abs=0.1)
