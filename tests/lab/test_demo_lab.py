"""`natlink demo` end to end, as a user runs it (a subprocess of the real CLI, real lab, real natlink service):
the story names every link with its measured time and finishes in under 10 s; --json; --config; --keep and
--down; Ctrl-C; missing prerequisites. Nothing may be left behind: namespaces, processes, files, records."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from natlink.lab import Lab
from natlink.lab.netns import call_in_netns, list_netns, netns_pids
from natlink.lab.probes import tcp_read_banner
from natlink.lab.procs import pid_alive
from natlink.lab.registry import REGISTRY_ROOT, ns_name

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
TIME = r"(?:\d+ ms|\d+\.\d\d s)"
ENV = {**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}


def natlink(*args: str, wrapper: tuple[str, ...] = (), timeout: float = 60, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*wrapper, sys.executable, "-m", "natlink", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env or ENV)


def unwrapped(text: str) -> str:
    """Step details wrap onto lines indented by 16 spaces; join them back."""
    return re.sub(r"\n {16}(?=\S)", " ", text)


def namespaces(tag: str) -> list[str]:
    return [n for n in list_netns() if n.startswith(ns_name(tag, ""))]


def assert_nothing_left(tag: str, pids: list[int], workdir: str | None = None) -> None:
    assert namespaces(tag) == []
    assert not os.path.exists(os.path.join(REGISTRY_ROOT, tag))
    assert [p for p in pids if pid_alive(p)] == []
    if workdir:
        assert not os.path.exists(workdir)


def test_demo_tells_the_whole_story_in_under_10_s() -> None:
    started = time.monotonic()
    proc = natlink("demo")
    wall = time.monotonic() - started
    out = unwrapped(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert wall < 10, f"the demo took {wall:.1f} s"
    links = [
        r"sandbox up — lab (?P<tag>[0-9a-z]+): LAN host 10\.0\.1\.201 \(test service on 3389\)",
        r"router found — (UPnP IGD at http://10\.0\.1\.1:5000/rootDesc\.xml|NAT-PMP at 10\.0\.1\.1|PCP at 10\.0\.1\.1)",
        r"WAN address public — 11\.0\.0\.2, reported by the router",
        r"mapping created \(rdp\) — TCP 3390 → 10\.0\.1\.201:3389 on the router",
        r"DDNS name published \(home\) — rdp\.home\.example → 11\.0\.0\.2 sent by RFC 2136 \(TSIG\) to knot on "
        r"11\.0\.0\.1, and resolved from the internet host",
        r"reachable from outside \(rdp\) — outside TCP connect from the reflector on 11\.0\.0\.1: verified",
        r"natlink run started — the real service \(pid (?P<pid>\d+)\) on the LAN host, ready in " + TIME,
        r"ISP address change followed — the ISP changed the WAN address 11\.0\.0\.2 → 11\.0\.0\.3; natlink .*"
        r"updated rdp\.home\.example → 11\.0\.0\.3 in " + TIME + r"; 11\.0\.0\.3:3390 answers from outside",
        r"router reboot repaired — the router rebooted and forgot its mappings \(outside connect: "
        r"11\.0\.0\.3:3390 refused\); natlink re-created TCP 3390 → 10\.0\.1\.201:3389 " + TIME +
        r" after the router answered again, and the outside connect works",
        r"teardown — service, daemons and helpers stopped; namespaces and files removed",
    ]
    found: dict[str, str] = {}
    for link in links:
        m = re.search(rf"^  ✓ +{TIME}  {link}", out, re.M)  # every link: ok mark and its measured time
        assert m, f"missing link {link!r} in:\n{out}"
        found.update(m.groupdict())
    assert re.search(rf"^the whole chain works — total {TIME}$", out, re.M)
    assert_nothing_left(found["tag"], [int(found["pid"])])


def test_demo_json_measures_every_link_and_leaves_nothing() -> None:
    proc = natlink("--json", "demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["total"] < 10
    steps = {s["key"]: s for s in doc["steps"]}
    assert list(steps) == ["sandbox", "router", "wan", "mapping", "ddns", "reach", "service", "ip-change", "reboot",
                           "teardown"]
    for s in doc["steps"]:
        assert s["status"] == "ok" and s["elapsed"] > 0, s
    assert steps["router"]["protocol"] in ("upnp", "natpmp", "pcp")
    assert steps["wan"]["verdict"] == "public" and steps["wan"]["public_ipv4"] == "11.0.0.2"
    assert steps["mapping"]["external_port"] == 3390 and steps["reach"]["verdict"] == "verified"
    [dns] = steps["ip-change"]["dns"]
    assert dns["hostname"] == "rdp.home.example" and 0 < dns["elapsed"] <= steps["ip-change"]["elapsed"]
    assert steps["reboot"]["while_down"] == [{"external_port": 3390, "verdict": "refused"}]
    assert steps["reboot"]["service_mapping_runs"] >= 1  # the service re-created it, not the demo
    sandbox = doc["sandbox"]
    assert sandbox["wan_ip"] == "11.0.0.3" and doc["kept"] is None
    assert {"service", "reflector", "standin", "miniupnpd", "knotd", "miniupnpd-after-reboot"} <= set(sandbox["pids"])
    assert_nothing_left(sandbox["tag"], list(sandbox["pids"].values()))


USER_CONFIG = """
[router]
lan_ip = "192.168.1.20"
protocols = ["upnp"]  # deterministic refusal of port 80 (NAT-PMP/PCP would offer another port instead)

[[mapping]]
name = "web"
external_port = 8443
internal_port = 443

[[mapping]]
name = "http"
external_port = 80
internal_port = 8080

[[mapping]]
name = "game"
protocol = "udp"
external_port = 27015

[public_ip]
sources = ["router", "https://api.ipify.org"]

[[ddns]]
name = "noip"
provider = "noip"
hostnames = ["myhome.ddns.net"]
username = "me@example.com"
password_file = "noip.password"

[[probe]]
mapping = "web"
via = "echoip"
echoip = "https://ifconfig.co"
"""


def test_demo_runs_a_users_config_in_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "noip.password").write_text("hunter2\n")
    (tmp_path / "noip.password").chmod(0o600)
    config = tmp_path / "my.toml"
    config.write_text(USER_CONFIG)
    proc = natlink("--json", "demo", "--config", str(config))
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["exit_code"] == 1, proc.stderr  # port 80 cannot be mapped: a real failure
    assert doc["config"] == str(config)
    by = {(s["key"], s["subject"]): s for s in doc["steps"]}
    assert by[("mapping", "web")]["status"] == "ok" and by[("mapping", "game")]["status"] == "ok"
    http = by[("mapping", "http")]
    assert http["status"] == "failed" and http["detail"].startswith("TCP 80 → 10.0.1.201:8080: UPNP error 606")
    assert "external_port" in http["detail"]  # the fix is named
    ddns = by[("ddns", "noip")]
    assert ddns["status"] == "ok" and ddns["hostnames"] == ["myhome.ddns.net"] and ddns["address"] == "11.0.0.2"
    assert by[("reach", "web")]["verdict"] == "verified"
    assert by[("reach", "http")]["status"] == "failed"
    service = by[("service", None)]  # its first round could not map port 80: that is never a ✓
    assert service["status"] == "failed" and "first round failed" in service["detail"], service
    assert by[("ip-change", None)]["status"] == "ok" and by[("ip-change", None)]["dns"][0]["elapsed"] > 0
    assert by[("reboot", None)]["status"] == "ok" and by[("reboot", None)]["while_down"] == [{"external_port": 8443, "verdict": "refused"}]
    assert by[("teardown", None)]["status"] == "ok"
    notes = "\n".join(doc["notes"])
    assert "router.lan_ip 192.168.1.20 -> 10.0.1.201" in notes
    assert "myhome.ddns.net published by RFC 2136 to the sandbox's DNS server 11.0.0.1 instead of noip" in notes
    assert "mapping game: UDP 27015 is mapped, but the outside check is TCP only" in notes
    assert "https://api.ipify.org would leave the sandbox" in notes
    assert "hunter2" not in proc.stdout + proc.stderr
    assert doc["sandbox"]["dns_zones"] == ["home.example", "ddns.net"]
    assert_nothing_left(doc["sandbox"]["tag"], list(doc["sandbox"]["pids"].values()))


def test_demo_with_a_broken_config_builds_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[mapping]]\nname = \"rdp\"\nexternal_port = 70000\n")
    proc = natlink("demo", "--config", str(config), wrapper=_jail(tmp_path),
                   env={**ENV, "TMPDIR": str(tmp_path / "tmp")})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "natlink: bad.toml:3: mapping[0].external_port: 70000 is not a port (1-65535)\n"
    _built_nothing(tmp_path)


def test_keep_leaves_a_working_sandbox_and_down_removes_it() -> None:
    proc = natlink("demo", "--keep")
    out = unwrapped(proc.stdout)
    tag_match = re.search(r"sandbox up — lab ([0-9a-z]+):", out)
    assert tag_match, out + proc.stderr
    tag = tag_match.group(1)
    try:
        assert proc.returncode == 0, out + proc.stderr
        pid = int(re.search(r"the real service \(pid (\d+)\)", out).group(1))
        workdir = re.search(r"files in (\S+)\)", out).group(1)
        assert re.search(rf"^  ✓ +{TIME}  sandbox kept — lab {tag} stays up", out, re.M)
        for host in ("lan", "rtr", "wan"):
            assert f"sudo ip netns exec natlink-lab-{tag}-{host} bash" in out
        assert "natlink demo --down" in out and "teardown" not in out
        # The demo has exited, yet its sandbox lives on: namespaces, the service, a working mapping.
        assert sorted(namespaces(tag)) == [f"natlink-lab-{tag}-lan", f"natlink-lab-{tag}-rtr", f"natlink-lab-{tag}-wan"]
        assert pid_alive(pid)
        banner = call_in_netns(f"natlink-lab-{tag}-wan", tcp_read_banner, "11.0.0.3", 3390, 2.0)
        assert banner == b"natlink demo: test service on port 3389\n"
        # Another lab's stale cleanup must spare a kept sandbox although its owner exited.
        assert tag not in Lab.cleanup_stale().removed_tags and len(namespaces(tag)) == 3
        sandbox_pids = [p for host in ("lan", "rtr", "wan") for p in netns_pids(f"natlink-lab-{tag}-{host}")]
        assert len(sandbox_pids) >= 5  # service, stand-in, miniupnpd, knotd, reflector

        down = natlink("demo", "--down")
        assert down.returncode == 0, down.stderr
        assert f"removed sandbox {tag}" in down.stdout
        assert_nothing_left(tag, [pid, *sandbox_pids], workdir)
        again = natlink("demo", "--down")
        assert again.returncode == 0 and "no sandbox left by `natlink demo --keep` is up" in again.stdout
    finally:
        Lab.destroy_kept(tag)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_tears_everything_down(sig: int, code: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "natlink", "demo"], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    seen: list[str] = []
    tag = None
    pids: list[int] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            m = re.search(r"sandbox up — lab ([0-9a-z]+):", line)
            tag = m.group(1) if m else tag
            if "natlink run started" in line:  # the most processes are up now
                assert tag is not None
                pids = [p for host in ("lan", "rtr", "wan") for p in netns_pids(f"natlink-lab-{tag}-{host}")]
                proc.send_signal(sig)
                break
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert tag is not None and len(pids) >= 5, "".join(seen)
    assert proc.returncode == code, "".join(seen) + rest + err
    assert "interrupted after" in rest and "the sandbox was torn down" in rest and "Traceback" not in err
    assert_nothing_left(tag, pids)


def _jail(tmp_path: Path, *inner: str) -> tuple[str, ...]:
    """Run a command in a private mount namespace whose /run/netns, lab registry and TMPDIR are empty
    directories we can inspect afterwards: anything the demo built would be left in them."""
    for d in ("netns", "registry", "tmp"):
        (tmp_path / d).mkdir()
    os.makedirs(REGISTRY_ROOT, exist_ok=True)
    os.makedirs("/run/netns", exist_ok=True)
    script = " && ".join([*inner, f"mount --bind {tmp_path}/netns /run/netns",
                          f"mount --bind {tmp_path}/registry {REGISTRY_ROOT}", 'exec "$@"'])
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "jail")


def _built_nothing(tmp_path: Path) -> None:
    assert [str(p) for d in ("netns", "registry", "tmp") for p in (tmp_path / d).iterdir()] == []


def test_missing_programs_one_line_exit_2_nothing_built(tmp_path: Path) -> None:
    from natlink.lab.prereq import find_binary

    hide = [f"mount --bind /dev/null {find_binary(name)}" for name in ("miniupnpd", "knotd")]
    proc = natlink("demo", wrapper=_jail(tmp_path, *hide), env={**ENV, "TMPDIR": str(tmp_path / "tmp")})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("natlink:") == 1 and "Traceback" not in proc.stderr and "Error" not in proc.stderr
    text = re.sub(r"\n +", " ", proc.stderr)  # one message, wrapped to the terminal
    assert text.startswith("natlink: the demo cannot run here: miniupnpd and knotd are not installed — ")
    assert "`apt-get install miniupnpd-nftables knot`, or `sudo apt-get install miniupnpd-nftables knot`" in text
    assert "as root (`su -`, not plain `su`)" in text
    _built_nothing(tmp_path)


def test_not_root_one_line_exit_2_nothing_built(tmp_path: Path) -> None:
    # A user namespace makes the demo run with euid 1000 while it can still read this checkout.
    wrapper = (*_jail(tmp_path), "unshare", "--user", "--map-user=1000", "--map-group=1000")
    for args in (("demo",), ("demo", "--keep"), ("demo", "--down")):
        proc = natlink(*args, wrapper=wrapper, env={**ENV, "TMPDIR": str(tmp_path / "tmp")})
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        text = re.sub(r"\n +", " ", proc.stderr)
        assert text.count("\n") == 1 and "must run as root" in text and "`sudo natlink demo`" in text
    _built_nothing(tmp_path)

