"""`natlink doctor` in the lab: each broken link is named, later failures are shown as its consequences."""

from __future__ import annotations

import pytest

from doctor_setup import (
    HOSTNAME, doctor, healthy_lab, set_a_record, start_reflector, upnpc_map, write_config,
)

pytestmark = pytest.mark.lab


def test_normal_everything_ok(lab) -> None:
    config = healthy_lab(lab)
    run = doctor(lab, config)
    assert run.code == 0, run.text + run.stderr
    assert run.doc["ok"] is True and run.doc["broken_link"] is None
    not_ok = [c for c in run.doc["checks"] if c["status"] != "ok"]
    # The lab's router has no hairpin NAT: that is reported (a warning), and it is the only one.
    assert [(c["link"], c["check"], c["status"]) for c in not_ok] == [(8, "hairpin", "warn")], not_ok
    assert {c["link"] for c in run.doc["checks"]} == set(range(1, 10))
    assert run.one(8, "probe")["data"]["verdict"] == "verified"
    assert "TTL 300 s" in run.one(7, "dns")["finding"]
    assert "Nothing is broken." in run.text and "\x1b[" not in run.text  # no colour when not a TTY
    quiet = doctor(lab, config, "--no-hairpin")
    assert quiet.code == 0 and all(c["status"] == "ok" for c in quiet.doc["checks"]), quiet.doc["checks"]


def test_cgnat_fails_at_the_wan_link_with_consequences(lab_factory) -> None:
    lab = lab_factory("cgnat", lan2=False)
    lab.tcp_service("lan", 3389)
    start_reflector(lab)
    run = doctor(lab, write_config(lab))
    assert run.code == 1
    broken = run.doc["broken_link"]
    assert broken["link"] == 3, run.doc
    assert "carrier-grade NAT" in broken["finding"] and "100.64.0.2" in broken["finding"]
    assert "public IPv4 address" in broken["fix"]
    assert run.one(2, "router")["status"] == "ok"  # the router itself answers
    for link, check in ((4, "mapping"), (8, "probe")):
        c = run.one(link, check)
        assert c["status"] != "ok" and c["consequence_of"] == {"link": 3, "check": "wan"}, c
    assert run.one(5, "service")["status"] == "ok"  # independent of the WAN
    assert "cannot work because of link 3" in run.text
    assert "First broken link: 3." in run.text


def test_service_down_fails_at_link_5(lab) -> None:
    upnpc_map(lab, 3390)
    set_a_record(lab, lab.wan_ip)
    start_reflector(lab)
    run = doctor(lab, write_config(lab))
    assert run.code == 1
    assert run.doc["broken_link"]["link"] == 5
    assert "start the service on port 3389" in run.doc["broken_link"]["fix"]
    # The port was free, so the prober listened there itself with a nonce: the path from outside works,
    # only the service is missing — link 5 is the one broken link.
    assert run.one(8, "probe")["status"] == "ok"
    assert "Fix: start the service on port 3389" in run.text


def test_mapping_missing_fails_at_link_4(lab) -> None:
    lab.tcp_service("lan", 3389)
    set_a_record(lab, lab.wan_ip)
    start_reflector(lab)
    run = doctor(lab, write_config(lab))
    assert run.code == 1
    c = run.one(4, "mapping")
    assert c["status"] == "fail" and c["cause"] == "missing" and "TCP 3390 is not on the router" in c["finding"]
    assert run.doc["broken_link"]["link"] == 4 and "natlink map" in run.doc["broken_link"]["fix"]
    assert run.one(8, "probe")["consequence_of"] == {"link": 4, "check": "mapping"}


def test_mapping_pointing_at_another_host(lab) -> None:
    lab.tcp_service("lan", 3389)
    upnpc_map(lab, 3390, host="lan2")  # lan2 (10.0.1.99) took external 3390 for itself
    set_a_record(lab, lab.wan_ip)
    start_reflector(lab)
    run = doctor(lab, write_config(lab))
    assert run.code == 1
    c = run.one(4, "mapping")
    assert c["status"] == "fail" and c["cause"] == "other-host"
    assert "points at another host, 10.0.1.99:3389" in c["finding"] and "10.0.1.201" in c["finding"]
    assert run.doc["broken_link"]["link"] == 4


def test_isp_blocked_port_warns_and_explains_the_timeout(lab) -> None:
    # The lab's miniupnpd (like many routers) only maps external ports 1024-65535, so port 80 cannot be mapped
    # through UPnP; 1433 (MS SQL) is on the same ISP block lists (issue 9 names 1433–1434) and can be.
    lab.tcp_service("lan", 3389)
    upnpc_map(lab, 1433)
    lab.blocked_port(1433)
    set_a_record(lab, lab.wan_ip)
    start_reflector(lab)
    run = doctor(lab, write_config(lab, mappings=[("sql", 1433, 3389)]))
    assert run.code == 1
    blocked = run.one(6, "isp-blocked")
    assert blocked["status"] == "warn" and "1433" in blocked["finding"] and "external_port = 11433" in blocked["fix"]
    assert run.one(4, "mapping")["status"] == "ok"
    probe = run.one(8, "probe")
    assert probe["status"] == "fail" and probe["cause"] == "timeout"
    assert "ISP block of inbound port 1433" in probe["finding"]
    assert probe["consequence_of"] == {"link": 6, "check": "isp-blocked"}
    assert run.doc["broken_link"]["link"] == 6


def test_dns_name_pointing_at_an_old_address(lab) -> None:
    lab.tcp_service("lan", 3389)
    upnpc_map(lab, 3390)
    set_a_record(lab, "11.0.0.9", ttl=600)
    start_reflector(lab)
    run = doctor(lab, write_config(lab))
    assert run.code == 1
    c = run.one(7, "dns")
    assert c["status"] == "fail" and c["subject"] == HOSTNAME
    assert "11.0.0.9" in c["finding"] and lab.wan_ip in c["finding"] and "TTL 600 s" in c["finding"]
    assert run.doc["broken_link"]["link"] == 7


def test_no_reflector_means_skipped_with_how_to_enable(lab) -> None:
    lab.tcp_service("lan", 3389)
    upnpc_map(lab, 3390)
    set_a_record(lab, lab.wan_ip)
    run = doctor(lab, write_config(lab, reflector=False))
    assert run.code == 0
    c = run.one(8, "probe")
    assert c["status"] == "skipped" and "natlink reflector" in c["fix"]


def test_invalid_config_exit_2(lab) -> None:
    path = f"{lab.workdir}/bad.toml"
    with open(path, "w") as fh:
        fh.write("[router]\nlan_ip = \"not-an-ip\"\n")
    run = doctor(lab, path)
    assert run.code == 2
    assert run.doc["broken_link"]["link"] == 1 and "lan_ip" in run.doc["broken_link"]["finding"]
