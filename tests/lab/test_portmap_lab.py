"""Port mapping against the lab's real miniupnpd + nftables NAT: `natlink map/mappings/unmap` run on the LAN host,
TCP connects from the WAN host through the router's real DNAT."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

BANNER = b"RDP-STANDIN\n"


def write_config(tmp_path: Path, *, protocols=("upnp", "natpmp", "pcp"), mappings=None, lan_ip="auto",
                 lease="1h") -> str:
    mappings = mappings or [dict(name="rdp", external_port=3390, internal_port=3389)]
    lines = ["[router]", f"protocols = {json.dumps(list(protocols))}", f'lan_ip = "{lan_ip}"', f'lease = "{lease}"',
             "timeout = 2", ""]
    for m in mappings:
        lines.append("[[mapping]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in m.items()]
        lines.append("")
    lines += ["[service]", f'state_dir = "{tmp_path / "state"}"', ""]
    path = tmp_path / "natlink.toml"
    path.write_text("\n".join(lines))
    return str(path)


def natlink(lab, cfg: str, *args: str, host: str = "lan"):
    return lab.run(host, [sys.executable, "-m", "natlink", "-c", cfg, *args], check=False, timeout=30)


def natlink_json(lab, cfg: str, *args: str):
    r = natlink(lab, cfg, "--json", *args)
    return r, json.loads(r.stdout)


def router_table(lab) -> list[tuple]:
    """The router's UPnP table read with miniupnpc directly (independent of natlink)."""
    def read():
        import miniupnpc
        u = miniupnpc.UPnP()
        u.selectigd(lab.igd_url)
        out, i = [], 0
        while (e := u.getgenericportmapping(i)) is not None:
            out.append(e)
            i += 1
        return out
    return lab.call("lan", read)


def plan_lines(stdout: str) -> list[str]:
    """The "plan:" header and its step lines in `natlink map` output."""
    return [ln for ln in stdout.splitlines() if ln.startswith("plan") or ln.startswith("  ")]


def upnpc_add(lab, ext: int, internal: int) -> None:
    lab.run("lan", ["upnpc", "-u", lab.igd_url, "-e", "other-client", "-a", lab.lan_ip, str(internal), str(ext),
                    "TCP"])


@pytest.mark.parametrize("protocol", ["upnp", "natpmp", "pcp"])
def test_map_reaches_service_is_idempotent_and_unmap_spares_others(lab, tmp_path, protocol):
    service = lab.tcp_service("lan", 3389, BANNER)
    upnpc_add(lab, 4001, 4000)  # someone else's mapping, must survive unmap
    cfg = write_config(tmp_path, protocols=(protocol,))

    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    assert doc["router"]["protocol"] == protocol and doc["external_ip"] == lab.wan_ip
    assert [(a["name"], a["action"], a["ok"]) for a in doc["actions"]] == [("rdp", "add", True)]
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER  # real TCP connect from outside through the DNAT
    assert service.connections >= 1

    r, listing = natlink_json(lab, cfg, "mappings")
    assert r.returncode == 0, r.stderr
    ours = [m for m in listing["mappings"] if m["ours"]]
    assert [(m["external_port"], m["internal_ip"], m["internal_port"], m["name"]) for m in ours] == \
        [(3390, lab.lan_ip, 3389, "rdp")]
    if protocol == "upnp":  # the whole table: the other client's entry is listed, not ours
        other = [m for m in listing["mappings"] if m["external_port"] == 4001]
        assert other and not other[0]["ours"] and other[0]["description"] == "other-client"

    r, again = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    # UPnP: seen in the table read in this run; NAT-PMP/PCP: asked again and confirmed by the router
    assert [a["action"] for a in again["actions"]] == ["keep" if protocol == "upnp" else "verify"]

    r = natlink(lab, cfg, "unmap")
    assert r.returncode == 0, r.stderr
    assert "deleted" in r.stdout and "rdp" in r.stdout
    with pytest.raises(OSError):  # the router itself refuses: nothing is mapped any more
        lab.tcp_banner("wan", lab.wan_ip, 3390, timeout=1.0)
    table = router_table(lab)
    assert [(e[0], e[3]) for e in table] == [(4001, "other-client")]


def test_human_output_says_auto_lan_ip_and_plan(lab, tmp_path):
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=("upnp",))
    dry = natlink(lab, cfg, "map", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{lab.lan_ip} (auto: this host's source address toward the gateway {lab.gateway})" in dry.stdout
    assert "add" in dry.stdout and "TCP 3390 → 10.0.1.201:3389" in dry.stdout
    assert router_table(lab) == []  # dry run changed nothing
    r = natlink(lab, cfg, "map")
    assert r.returncode == 0 and "ok: 1 added" in r.stdout
    r = natlink(lab, cfg, "map")
    assert r.returncode == 0 and "(no changes)" in r.stdout


def test_upnp_router_reboot_recreates_mapping(lab, tmp_path):
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=("upnp",))
    assert natlink(lab, cfg, "map").returncode == 0
    lab.router_reboot()
    with pytest.raises(OSError):
        lab.tcp_banner("wan", lab.wan_ip, 3390, timeout=1.0)
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    assert [(s["action"], "forgot" in s["reason"]) for s in doc["plan"]] == [("add", True)]
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER


@pytest.mark.parametrize("protocol", ["natpmp", "pcp"])
def test_epoch_drop_detected_and_mapping_recreated(lab, tmp_path, protocol):
    lab.tcp_service("lan", 3389, BANNER)
    cfg = write_config(tmp_path, protocols=(protocol,))
    r, first = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    time.sleep(3.5)  # let the epoch grow, so a restart is visible as a step backwards
    lab.router_reboot()
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    assert doc["epoch_lost"] is True
    assert doc["router"]["epoch"] < 3
    step = doc["plan"][0]
    assert step["action"] == "add" and "the router forgot it: its epoch is" in step["reason"]
    assert lab.tcp_banner("wan", lab.wan_ip, 3390) == BANNER


@pytest.mark.parametrize("protocols", [("upnp",), ("natpmp",), ("upnp", "natpmp", "pcp")])
def test_cgnat_exit_1_with_explanation_and_nothing_claimed(lab_factory, tmp_path, protocols):
    lab = lab_factory("cgnat")
    cfg = write_config(tmp_path, protocols=protocols)
    r = natlink(lab, cfg, "map")
    assert r.returncode == 1
    assert "no external address" in r.stderr and "nothing was planned or mapped" in r.stderr
    assert "ok:" not in r.stdout
    assert not plan_lines(r.stdout)  # no plan that reads as if it would be applied
    assert router_table(lab) == []
    state = tmp_path / "state" / "mappings.json"
    assert not state.exists() or json.loads(state.read_text()) == {}


def test_cgnat_dry_run_and_json_show_no_plan(lab_factory, tmp_path):
    lab = lab_factory("cgnat")
    cfg = write_config(tmp_path, protocols=("upnp",))
    r = natlink(lab, cfg, "map", "--dry-run")
    assert r.returncode == 1
    assert not plan_lines(r.stdout) and "nothing was planned or mapped" in r.stderr
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 1
    assert doc["ok"] is False and doc["wan_problem"] and doc["plan"] == [] and doc["actions"] == []


def test_secure_mode_refusal_is_explained(lab, tmp_path):
    cfg = write_config(tmp_path, protocols=("upnp",), mappings=[
        dict(name="lan2rdp", external_port=3391, internal_port=3389, internal_ip=lab.lan2_ip)])
    r = natlink(lab, cfg, "map")
    assert r.returncode == 1
    line = [ln for ln in r.stderr.splitlines() if "lan2rdp" in ln][0]
    assert "error 718" in line or "error 606" in line
    assert "only lets a host map ports to itself" in line or "secure mode" in line
    assert f"run natlink on {lab.lan2_ip}" in line
    assert "Traceback" not in r.stderr
    assert router_table(lab) == []


def test_port_80_not_allowed_is_explained(lab, tmp_path):
    cfg = write_config(tmp_path, protocols=("upnp",), mappings=[dict(name="web", external_port=80, internal_port=8080)])
    r = natlink(lab, cfg, "map")
    assert r.returncode == 1
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("natlink: web:")][0]
    assert "error 606" in line and "port 80" in line and "high external_port" in line


def test_port_taken_by_other_client_is_a_conflict_then_other_port(lab, tmp_path):
    lab.tcp_service("lan", 3389, BANNER)
    lab.run("lan2", ["upnpc", "-u", lab.igd_url, "-e", "lan2-client", "-a", lab.lan2_ip, "3389", "3390", "TCP"])
    cfg = write_config(tmp_path, protocols=("upnp",))
    r = natlink(lab, cfg, "map")
    assert r.returncode == 1 and "taken by 10.0.1.99:3389 (lan2-client)" in r.stderr
    cfg = write_config(tmp_path, protocols=("upnp",), mappings=[
        dict(name="rdp", external_port=3390, internal_port=3389, allow_other_port=True)])
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    port = doc["actions"][0]["external_port"]
    assert port != 3390
    assert lab.tcp_banner("wan", lab.wan_ip, port) == BANNER
    r, again = natlink_json(lab, cfg, "map")  # the port the router gave is kept
    assert [(a["action"], a["external_port"]) for a in again["actions"]] == [("keep", port)]
    entries = {e[0]: e[3] for e in router_table(lab)}
    assert entries[3390] == "lan2-client"


def test_router_absent_clear_message_fast(lab, tmp_path):
    cfg = write_config(tmp_path)
    lab.router_down()
    started = time.monotonic()
    r = natlink(lab, cfg, "map")
    elapsed = time.monotonic() - started
    assert r.returncode == 1
    assert "no router answered at 10.0.1.1 within 2 s" in r.stderr and "Traceback" not in r.stderr
    assert elapsed < 4.0  # ~2 s router timeout + interpreter start


def test_stale_cached_igd_url_falls_back_to_discovery(lab, tmp_path):
    cfg = write_config(tmp_path, protocols=("upnp",))
    state = tmp_path / "state"
    state.mkdir()
    (state / "router.json").write_text(json.dumps({"gateway": lab.gateway, "igd_url": "http://10.0.1.1:5999/gone.xml",
                                                   "protocol": "upnp"}))
    r, doc = natlink_json(lab, cfg, "map")
    assert r.returncode == 0, r.stderr
    assert doc["router"]["igd_url"] == lab.igd_url and doc["router"]["igd_url_source"] == "ssdp"
    cached = json.loads((state / "router.json").read_text())
    assert cached["igd_url"] == lab.igd_url
    r, doc = natlink_json(lab, cfg, "map")
    assert doc["router"]["igd_url_source"] == "cache"


def test_open_router_api_in_process(lab, tmp_path):
    """The cross-module API other parts call: open_router + reconcile, inside the LAN namespace."""
    from natlink.config import load_config
    from natlink.portmap.reconcile import reconcile
    from natlink.portmap.router import open_router
    from natlink.state import StateStore

    cfg = load_config(write_config(tmp_path))
    store = StateStore(cfg.service.state_dir)

    def go():
        router = open_router(cfg.router, store)
        try:
            ext = router.external_ip()
            report = reconcile(cfg, store, router=router)
            return router.mapper, router.epoch, ext, report.ok, report.to_json()
        finally:
            router.close()

    protocol, epoch, ext, ok, doc = lab.call("lan", go)
    assert protocol in ("upnp", "natpmp", "pcp") and ext == lab.wan_ip and ok
    assert (epoch is None) == (protocol == "upnp")
    json.dumps(doc)
    assert doc["next_renewal"] is not None and 1800 <= doc["next_renewal"] <= 2250
