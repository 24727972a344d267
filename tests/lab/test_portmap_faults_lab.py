"""Router faults against the real miniupnpd/nftables: the mapping daemon restarting with its epoch kept
(system_uptime=yes), and the repairs `natlink map`, `natlink run --once` and the running service make."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from natlink.lab import faults
from service_support import start_natlink, wait_for, wan_connects
from test_portmap_lab import BANNER, natlink, natlink_json, router_table, write_config

pytestmark = pytest.mark.lab


def refused(lab, port: int = 3390) -> bool:
    try:
        lab.tcp_banner("wan", lab.wan_ip, port, timeout=1.0)
    except OSError:
        return True
    return False


@pytest.mark.parametrize("protocol", ["upnp", "natpmp", "pcp"])
def test_daemon_restart_with_epoch_kept_is_repaired_by_map_and_run_once(lab, tmp_path, protocol):
    faults.keep_epoch_across_restarts(lab)
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=(protocol,))
    r, first = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER

    faults.daemon_restart(lab)
    assert refused(lab)  # the router forgot the mapping
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    if protocol != "upnp":
        # nothing but asking again can show the loss: the epoch grew as if nothing happened
        assert doc["epoch_lost"] is False and doc["router"]["epoch"] >= first["router"]["epoch"]
        assert [(a["action"], a["ok"]) for a in doc["actions"]] == [("verify", True)]
    else:
        assert [(a["action"], a["ok"]) for a in doc["actions"]] == [("add", True)]
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER

    human = natlink(lab, cfg, "map")
    assert human.returncode == 0, human.stderr
    if protocol == "upnp":  # read from the router's table in this run
        assert "in the router's table" in human.stdout
    else:  # no lease claimed from natlink's own records
        assert " left)" not in human.stdout and "verified by the router" in human.stdout

    faults.daemon_restart(lab)
    assert refused(lab)
    r = lab.run("lan", [sys.executable, "-m", "natlink", "-c", cfg, "run", "--once"], check=False, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER


@pytest.mark.parametrize("protocol", ["natpmp", "upnp"])
def test_running_service_repairs_within_its_mappings_interval(lab, tmp_path, protocol):
    """No events (--no-events): only the periodic mappings job can notice."""
    faults.keep_epoch_across_restarts(lab)
    lab.tcp_service("lan", 3389, BANNER)
    path = Path(write_config(tmp_path, protocols=(protocol,), lease="0"))  # lease 0: no 30 s interval floor
    with open(path, "a") as fh:
        fh.write('\n[schedule]\nmappings = "2s"\njitter = 0\n\n[public_ip]\nsources = ["router"]\n')
    nl = start_natlink(lab, path, "--no-events")
    try:
        wait_for(lambda: wan_connects(lab), 15, "the first mapping")
        faults.daemon_restart(lab)
        t0 = time.monotonic()
        wait_for(lambda: wan_connects(lab), 15, "the service to re-create the mapping")
        print(f"daemon restart -> mapping back after {time.monotonic() - t0:.2f} s")
        # the record is written at the end of the round (after the read-back and the DHCP check), a moment after
        # the mapping works: wait for it rather than race it
        state = tmp_path / "state" / "mappings.json"
        wait_for(lambda: state.exists() and "rdp" in json.loads(state.read_text()), 15, "the mapping's record")
        records = json.loads(state.read_text())
        assert records["rdp"]["via"] == protocol
    finally:
        code, _ = nl.stop()
    assert code == 0, nl.log


def test_mapping_for_another_host_never_over_natpmp(lab, tmp_path):
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=("natpmp",), mappings=[
        dict(name="lan2rdp", external_port=3391, internal_port=3389, internal_ip=lab.lan2_ip)])
    r = natlink(lab, cfg, "map")
    assert r.returncode == 1 and "ok:" not in r.stdout
    line = [ln for ln in r.stderr.splitlines() if "lan2rdp" in ln][0]
    assert "NAT-PMP maps only to the host that asks" in line and f"run natlink on {lab.lan2_ip}" in line
    assert refused(lab, 3391)  # nothing was mapped (to this host or any other)
    assert router_table(lab) == []


@pytest.mark.parametrize("allowed", [False, True])
def test_pcp_mapping_for_another_host_uses_third_party(lab, tmp_path, allowed):
    if allowed:
        lab.reconfigure_router(pcp_allow_thirdparty=True)
    lan2 = lab.tcp_service("lan2", 3389, b"LAN2\n")
    cfg = write_config(tmp_path, protocols=("pcp",), mappings=[
        dict(name="lan2rdp", external_port=3391, internal_port=3389, internal_ip=lab.lan2_ip)])
    r, doc = natlink_json(lab, cfg, "map")
    if allowed:
        assert r.returncode == 0, r.stderr
        assert lab.tcp_banner("wan", lab.wan_ip, 3391) == b"LAN2\n" and lan2.connections == 1
        assert [(e[0], e[2][0]) for e in router_table(lab)] == [(3391, lab.lan2_ip)]
        r = natlink(lab, cfg, "unmap")
        assert r.returncode == 0, r.stderr
        assert refused(lab, 3391)
    else:
        assert r.returncode == 1 and doc["actions"][0]["ok"] is False
        err = doc["actions"][0]["error"]
        assert "another host" in err["cause"] and "pcp_allow_thirdparty" in err["fix"]
        assert router_table(lab) == []


def test_second_lan_host_answering_ssdp_is_ignored_and_never_cached(lab, tmp_path):
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=("upnp",))
    with faults.RogueSsdp(lab) as rogue:
        r, doc = natlink_json(lab, cfg, "map")
        assert rogue.answered > 0  # it did answer, before the router
    assert r.returncode == 0, r.stderr
    assert doc["router"]["igd_url"] == lab.igd_url
    assert any(lab.lan2_ip in s for s in doc["router"]["ssdp_ignored"])
    cached = json.loads((tmp_path / "state" / "router.json").read_text())
    assert cached["igd_url"] == lab.igd_url
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER


def test_router_http_port_change_across_reboot(lab, tmp_path):
    """A cached URL that the router now refuses: the command rediscovers, and an open session reopens within
    the same call (no error shown)."""
    from natlink.config import load_config
    from natlink.portmap.reconcile import reconcile
    from natlink.portmap.session import RouterSession
    from natlink.state import StateStore

    lab.tcp_service("lan", 3389, BANNER)
    path = write_config(tmp_path, protocols=("upnp",))
    r, doc = natlink_json(lab, path, "map")
    assert r.returncode == 0 and doc["router"]["igd_url"].endswith(":5000/rootDesc.xml")

    cfg = load_config(path)
    store = StateStore(cfg.service.state_dir)
    session = RouterSession.for_config(cfg, store)
    lab.call("lan", session.router)  # opened before the reboot, from the cached URL
    faults.reboot_with_http_port(lab, 5123)
    report = lab.call("lan", reconcile, cfg, store, session=session)
    assert report.ok and session.opens == 2, report.to_json()
    assert [a.action for a in report.actions] == ["add"] and report.router.igd_url == lab.igd_url
    lab.call("lan", session.close)
    assert lab.igd_url.endswith(":5123/rootDesc.xml")
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER

    faults.reboot_with_http_port(lab, 5124)  # and a new process with the stale cache
    r, doc = natlink_json(lab, path, "map")
    assert r.returncode == 0, r.stderr
    assert doc["router"]["igd_url"] == lab.igd_url and doc["router"]["igd_url_source"] == "ssdp"
    assert json.loads((tmp_path / "state" / "router.json").read_text())["igd_url"] == lab.igd_url


@pytest.mark.parametrize("protocol", ["natpmp", "pcp", "upnp"])
def test_map_succeeds_under_30_percent_packet_loss(lab, tmp_path, protocol):
    """nftables drops 30 % of NAT-PMP/PCP and SSDP requests at the router: the RFC 6886/6887 retransmits (and
    SSDP resends) still get `natlink map` through. timeout 8 s allows 6 sends per request."""
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=(protocol,))
    text = open(cfg).read().replace("timeout = 2", "timeout = 8")
    open(cfg, "w").write(text)
    with faults.packet_loss(lab, 30):
        r, doc = natlink_json(lab, cfg, "map")
        assert r.returncode == 0, r.stderr
        r, again = natlink_json(lab, cfg, "map")
        assert r.returncode == 0, r.stderr
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER


def test_full_loss_really_drops(lab, tmp_path):
    """The loss rule is live: with 100 % nothing gets through to NAT-PMP."""
    cfg = write_config(tmp_path, protocols=("natpmp",))
    text = open(cfg).read().replace("timeout = 2", "timeout = 1")
    open(cfg, "w").write(text)
    with faults.packet_loss(lab, 100):
        r = natlink(lab, cfg, "map")
    assert r.returncode == 1 and "no router answered" in r.stderr


def doctor(lab, cfg: str):
    r = natlink(lab, cfg, "--json", "doctor")
    doc = json.loads(r.stdout)
    return r.returncode, [c for c in doc["checks"] if c["link"] == 4]


def test_doctor_after_a_daemon_restart_claims_nothing_it_did_not_see(lab, tmp_path):
    faults.keep_epoch_across_restarts(lab)
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=("natpmp", "upnp", "pcp"))  # NAT-PMP maps; UPnP lists the table
    with open(cfg, "a") as fh:
        fh.write('\n[public_ip]\nsources = ["router"]\n')
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0 and doc["router"]["protocol"] == "natpmp", r.stderr
    code, link4 = doctor(lab, cfg)
    assert [(c["status"], c["subject"]) for c in link4] == [("ok", "rdp")]  # read in the table, over UPnP

    faults.daemon_restart(lab)
    code, link4 = doctor(lab, cfg)
    assert code == 1 and link4[0]["status"] == "fail" and link4[0]["cause"] == "missing"
    assert "TCP 3390" in link4[0]["finding"]
    assert router_table(lab) == [] and refused(lab)  # the doctor changed nothing

    only_pmp = write_config(tmp_path, protocols=("natpmp",))  # nothing here can list the table
    with open(only_pmp, "a") as fh:
        fh.write('\n[public_ip]\nsources = ["router"]\n')
    code, link4 = doctor(lab, only_pmp)
    assert link4[0]["status"] == "warn" and link4[0]["cause"] == "unverified"
    assert "NAT-PMP cannot list" in link4[0]["finding"] and "[[probe]]" in link4[0]["fix"]
    assert router_table(lab) == []
