"""The shipped units under a real systemd 252 as PID 1: a bookworm container booted with systemd-nspawn -b
(tests/lab/systemd_container.py), natlink pip-installed from this checkout, the units from systemd/ as they are.

Inside, natlink talks only to stand-ins on the container's loopback (tests/lab/systemd_standin.py: a NAT-PMP
gateway and a dyndns2 server); the container has no other network. The test's own drop-ins change only what a
test needs: SystemCallErrorNumber= emptied (a blocked syscall kills instead of failing quietly), the DDNS
password as a LoadCredential=, a 6 s watchdog so a hang is seen within seconds, and two observers (`id -u` before
the one-shot, the exit status after natlink.service stops). Runs in file order, one container for the module.
Figures (boot, stop time, hang to restart, `systemd-analyze security`) are printed at the end."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import service_support
import systemd_container as sc

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

HERE = Path(__file__).resolve().parent
PASSWORD = "dyn-Pw-7c1e9f0b"  # the DDNS secret: must reach the stand-in, never the journal or the state
TOKEN = "refl-Tk-52d4a8e3"  # the reflector token, likewise
STANDIN_LOG = "/var/lib/natlink-standin/requests.log"
STATE = "/var/lib/private/natlink"
KILL_ON_VIOLATION = "[Service]\nSystemCallErrorNumber=\n"


def config(*, ddns_server: str = "http://127.0.0.1:8053", hostname: str = "home.example.test", schedule: str = "",
           service: str = "") -> str:
    return f"""
[router]
protocols = ["natpmp"]
gateway = "127.0.0.1"
lan_ip = "127.0.0.1"
timeout = 1

[[mapping]]
name = "web"
protocol = "tcp"
external_port = 8443
internal_port = 8443

[public_ip]
sources = ["router", "interface:lo"]

[[ddns]]
name = "home"
provider = "dyndns2"
server = "{ddns_server}"
hostnames = ["{hostname}"]
username = "home"
password_credential = "dyn-password"
verify = false

[schedule]
jitter = 0
{schedule}
[service]
metrics = "127.0.0.1:9877"
{service}"""


GOOD = config()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    return service_support.wait_for(check, timeout, what, interval=0.25)  # each check is an nsenter: not too often


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\nsystemd-real figures: " + json.dumps(found))


@pytest.fixture(scope="module")
def uids() -> dict[str, str]:
    """unit -> the UID its process ran as (recorded while it ran: dynamic users vanish with their unit)."""
    return {}


@pytest.fixture(scope="module")
def kernel_mark() -> float:
    """When this module started: older seccomp kills are not ours to judge."""
    return time.time()


@pytest.fixture(scope="module")
def box(figures: dict[str, Any], kernel_mark: float) -> Iterator[sc.Container]:
    sc.require_tools("real-systemd lab")
    started = time.monotonic()
    with sc.booted_container() as c:
        figures["ready_seconds"] = round(time.monotonic() - started, 1)
        figures["boot_seconds"] = round(c.boot_seconds, 2)
        prepare(c)
        yield c


def prepare(c: sc.Container) -> None:
    """The stand-ins, secrets, config and the test's drop-ins in a booted container (bench/systemd_bench.py too)."""
    c.write("/usr/local/lib/natlink-test/standin.py", (HERE / "systemd_standin.py").read_text())
    c.write("/etc/natlink-standin/expected", PASSWORD + "\n", 0o600)
    c.write("/etc/systemd/system/natlink-standin.service",
            "[Service]\nStateDirectory=natlink-standin\nExecStart=/usr/bin/python3 "
            f"/usr/local/lib/natlink-test/standin.py {STANDIN_LOG} /etc/natlink-standin/expected\n")
    c.write("/etc/natlink/dyn.password", PASSWORD + "\n", 0o600)
    c.write("/etc/natlink/reflector.token", TOKEN + "\n", 0o600)
    cert, key = self_signed_cert("127.0.0.1", "::1")
    c.write("/etc/natlink/reflector.crt", cert)
    c.write("/etc/natlink/reflector.key", key, 0o600)
    c.write("/etc/natlink/config.toml", GOOD)
    for unit in ("natlink.service", "natlink-oneshot.service", "natlink-reflector.service"):
        c.write(f"/etc/systemd/system/{unit}.d/kill-on-violation.conf", KILL_ON_VIOLATION)
    for unit in ("natlink.service", "natlink-oneshot.service"):
        c.write(f"/etc/systemd/system/{unit}.d/credential.conf",
                "[Service]\nLoadCredential=dyn-password:/etc/natlink/dyn.password\n")
    c.write("/etc/systemd/system/natlink.service.d/watchdog.conf", "[Service]\nWatchdogSec=6s\n")
    # a stopped unit is unloaded with its exit status; systemd hands the status to ExecStopPost=
    c.write("/etc/systemd/system/natlink.service.d/exit.conf",
            "[Service]\nExecStopPost=/bin/sh -c 'echo \"exit: $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS\"'\n")
    # the one-shot's UID, logged by a command of the same unit before natlink runs
    c.write("/etc/systemd/system/natlink-oneshot.service.d/uid.conf", "[Service]\nExecStartPre=/usr/bin/id -u\n")
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "start", "natlink-standin")
    wait_for("stand-in listening", lambda: c.run("python3", "-c", "import socket; socket.create_connection("
                                                 "('127.0.0.1', 8053), 1)", check=False).returncode == 0)


def self_signed_cert(*ips: str) -> tuple[str, str]:
    """A throwaway certificate (its own CA) for the reflector's HTTPS: (cert PEM, key PEM)."""
    with tempfile.TemporaryDirectory() as directory:
        cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "2", "-subj", "/CN=natlink-test-reflector",
                        "-addext", "subjectAltName=" + ",".join(f"IP:{ip}" for ip in ips)],
                       check=True, capture_output=True, timeout=60)
        return cert.read_text(), key.read_text()


def journal(c: sc.Container, *args: str) -> str:
    return c.run("journalctl", "--no-pager", "-o", "cat", *args).stdout


def standin_requests(c: sc.Container) -> list[dict[str, Any]]:
    out = c.run("cat", STANDIN_LOG, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def http_get(c: sc.Container, url: str, headers: dict[str, str] | None = None, body: str | None = None,
             ca: str | None = None) -> tuple[int, str]:
    script = ("import json, ssl, sys, urllib.request, urllib.error\n"
              "a = json.loads(sys.argv[1])\n"
              "r = urllib.request.Request(a['url'], data=a['body'].encode() if a['body'] else None, headers=a['h'])\n"
              "ctx = ssl.create_default_context(cafile=a['ca']) if a['ca'] else None\n"
              "try:\n    x = urllib.request.urlopen(r, timeout=10, context=ctx); print(x.status); print(x.read().decode())\n"
              "except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\n")
    out = c.run("python3", "-c", script, json.dumps({"url": url, "h": headers or {}, "body": body, "ca": ca})).stdout
    status, _, text = out.partition("\n")
    return int(status), text


def main_pid(c: sc.Container) -> int:
    return int(c.show("natlink.service", "MainPID")["MainPID"])


def test_ready_via_notify_then_status_from_the_jobs(box):
    box.run("systemctl", "start", "natlink")  # Type=notify: returns once natlink sent READY=1
    props = box.show("natlink.service", "Type", "ActiveState", "SubState", "NotifyAccess", "StatusText")
    assert (props["Type"], props["ActiveState"], props["SubState"]) == ("notify", "active", "running")
    log = journal(box, "-u", "natlink")
    assert log.index("natlink service started") < log.index("Started natlink.service")
    # StatusText follows the jobs at once (it said "starting" for the first 30 s)
    status = wait_for("StatusText after the first jobs",
                      lambda: "ddns updated" in (t := box.show("natlink.service", "StatusText")["StatusText"]) and t)
    assert "router 11.0.0.5" in status and "starting" not in status
    assert "natlink_up 1" in http_get(box, "http://127.0.0.1:9877/metrics")[1]


def test_credential_is_used_and_never_logged(box):
    updates = wait_for("a dyndns2 update", lambda: [r for r in standin_requests(box) if r.get("path") == "/nic/update"])
    assert updates[0]["auth_ok"] is True and updates[0]["myip"] == "11.0.0.5"
    everything = box.run("journalctl", "--no-pager", "-o", "export").stdout
    state = box.run("sh", "-c", f"cat {STATE}/*").stdout
    assert "natlink service started" in everything and "publicip" in box.run("ls", STATE).stdout
    assert PASSWORD not in everything and PASSWORD not in state


def test_state_directory_owner_and_modes(box, uids):
    uid = int(box.run("stat", "-c", "%u", f"/proc/{main_pid(box)}").stdout)
    uids["natlink.service"] = str(uid)
    assert uid != 0 and box.show("natlink.service", "User")["User"] == "natlink"
    assert box.run("readlink", "/var/lib/natlink").stdout.strip() == "private/natlink"
    assert box.run("stat", "-c", "%a %u", STATE).stdout.split() == ["750", str(uid)]
    files = box.run("sh", "-c", f"stat -c '%n %a %u' {STATE}/*").stdout.splitlines()
    assert files and all(line.split()[1:] == ["600", str(uid)] for line in files), files


def test_reload_good_and_bad(box):
    pid = main_pid(box)
    box.write("/etc/natlink/config.toml", config(schedule='ddns = "9m"\n'))
    box.run("systemctl", "reload", "natlink")
    wait_for("reloaded in the journal", lambda: "reloaded /etc/natlink/config.toml" in journal(box, "-u", "natlink"))
    box.write("/etc/natlink/config.toml", GOOD + "\n[bogus\n")
    bad = box.run("systemctl", "reload", "natlink", check=False)
    assert bad.returncode != 0  # D3: the reload fails, and the running service never saw the broken file
    props = box.show("natlink.service", "ActiveState", "MainPID")
    assert props == {"ActiveState": "active", "MainPID": str(pid)}
    log = journal(box, "-u", "natlink")
    assert "not valid TOML" in log and "Reload failed for natlink.service" in log
    assert "natlink_up 1" in http_get(box, "http://127.0.0.1:9877/metrics")[1]  # the old config still runs
    box.write("/etc/natlink/config.toml", GOOD)
    box.run("systemctl", "reload", "natlink")


def test_reload_with_a_missing_credential_fails_and_keeps_the_old_config(box):
    """D3 for what check-config cannot see (ExecReload= gets no credentials): the service itself rejects the
    config, and `natlink reload` (the second ExecReload=) turns its verdict into a failed `systemctl reload`."""
    pid = main_pid(box)
    since = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    box.write("/etc/natlink/config.toml", GOOD.replace('password_credential = "dyn-password"',
                                                       'password_credential = "dyn-missing"'))
    bad = box.run("systemctl", "reload", "natlink", check=False)
    assert bad.returncode != 0
    props = box.show("natlink.service", "ActiveState", "MainPID")
    assert props == {"ActiveState": "active", "MainPID": str(pid)}
    log = wait_for("the reload's failure in the journal",
                   lambda: "Reload failed for natlink.service" in (t := journal(box, "-u", "natlink", "--since",
                                                                                since)) and t)
    # the service's reason, logged by the service and repeated by `natlink reload` (its stderr)
    assert "reload rejected, the running config stays in use" in log and "dyn-missing" in log
    assert f"natlink service (pid {pid}) rejected the new config" in log and PASSWORD not in log
    assert "natlink_up 1" in http_get(box, "http://127.0.0.1:9877/metrics")[1]  # the old config still runs
    box.write("/etc/natlink/config.toml", GOOD)
    box.run("systemctl", "reload", "natlink")  # returns once the service said it took the config
    wait_for("the accepted reload in the journal",  # stdout reaches the journal on its own stream, maybe later
             lambda: f"natlink service (pid {pid}) reloaded its config" in journal(box, "-u", "natlink", "--since",
                                                                                   since))


def test_oneshot_beside_the_service_keeps_the_state_writable(box):
    """D1: a one-shot started while the service runs is refused (one natlink per state directory), and since both
    units' dynamic users are one UID, its start does not chown the shared state directory away from the service."""
    service_uid = box.run("stat", "-c", "%u", f"/proc/{main_pid(box)}").stdout.strip()
    since = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    time.sleep(1)
    assert box.run("systemctl", "start", "natlink-oneshot", check=False).returncode != 0
    log = journal(box, "-u", "natlink-oneshot", "--since", since)
    assert "already running" in log, log
    # `id -u`'s line reaches the journal through its own stdout stream, possibly after systemctl returned
    uids = wait_for("the one-shot's `id -u` line in the journal", lambda: box.run(
        "journalctl", "-u", "natlink-oneshot", "-o", "cat", "--since", since, "_COMM=id").stdout.split())
    assert uids == [service_uid]
    assert box.run("stat", "-c", "%u", STATE).stdout.strip() == service_uid
    box.run("systemctl", "reload", "natlink")  # the service saves its state again after the one-shot's start
    wait_for("the service reloaded", lambda: "reloaded" in journal(box, "-u", "natlink", "--since", since))
    time.sleep(2)
    assert "Permission denied" not in journal(box, "-u", "natlink", "--since", since)
    assert box.show("natlink.service", "ActiveState")["ActiveState"] == "active"


def test_watchdog_pings_then_restart_after_a_hung_job(box, figures):
    first = box.show("natlink.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
    time.sleep(7)  # longer than WatchdogSec=6s: only pings keep it alive
    props = box.show("natlink.service", "WatchdogTimestampMonotonic", "ActiveState", "NRestarts")
    assert props["WatchdogTimestampMonotonic"] != first and props["ActiveState"] == "active"
    restarts = int(props["NRestarts"])
    # a dyndns2 server that trickles one byte a second, for a new name (so an update is due), and a 2 s hang limit
    box.write("/etc/natlink/config.toml", config(ddns_server="http://127.0.0.1:8053/trickle/nic/update",
                                                 hostname="hang.example.test", service='hung_job = "2s"\n'))
    hung_at = time.monotonic()
    box.run("systemctl", "reload", "natlink")  # a reload triggers the DDNS job
    wait_for("a watchdog restart", lambda: int(box.show("natlink.service", "NRestarts")["NRestarts"]) > restarts,
             timeout=40)
    figures["hang_to_restart_seconds"] = round(time.monotonic() - hung_at, 1)
    box.write("/etc/natlink/config.toml", GOOD)
    log = journal(box, "-u", "natlink")
    assert re.search(r"ddns has been running for \d+s; letting the watchdog restart the service", log)
    assert "Watchdog timeout" in log
    box.run("systemctl", "restart", "natlink")
    assert box.show("natlink.service", "ActiveState")["ActiveState"] == "active"


def test_reflector_unit_starts_and_answers(box, uids):
    """HTTPS with the certificate and token as credentials, under its own log name, as an unprivileged user."""
    box.run("systemctl", "start", "natlink-reflector")
    wait_for("reflector listening", lambda: box.run("python3", "-c", "import socket; socket.create_connection("
                                                    "('::1', 8765), 1)", check=False).returncode == 0)
    ca = "/etc/natlink/reflector.crt"
    status, body = http_get(box, "https://[::1]:8765/v1/health", ca=ca)
    assert status == 200 and json.loads(body)["auth"] is True
    probe = json.dumps({"ports": [8053], "timeout": 2})
    headers = {"Content-Type": "application/json"}
    assert http_get(box, "https://127.0.0.1:8765/v1/probe", headers, probe, ca=ca)[0] == 401
    status, body = http_get(box, "https://127.0.0.1:8765/v1/probe", {**headers, "Authorization": f"Bearer {TOKEN}"},
                            probe, ca=ca)
    assert status == 200 and json.loads(body)["results"][0]["outcome"] == "open"
    # D6: it logs under its own name, not `env`, and names its address as a URL
    assert "natlink reflector on https://[::]:8765" in journal(box, "-t", "natlink-reflector")
    assert TOKEN not in box.run("journalctl", "--no-pager", "-o", "export").stdout
    uid = box.run("stat", "-c", "%u", f"/proc/{box.show('natlink-reflector.service', 'MainPID')['MainPID']}").stdout
    assert uid.strip() != "0"
    uids["natlink-reflector.service"] = uid.strip()
    box.run("systemctl", "stop", "natlink-reflector")


def test_stop_exits_zero(box, figures):
    assert box.show("natlink.service", "ActiveState")["ActiveState"] == "active"
    started = time.monotonic()
    box.run("systemctl", "stop", "natlink")
    figures["stop_seconds"] = round(time.monotonic() - started, 2)
    assert box.show("natlink.service", "ActiveState")["ActiveState"] == "inactive"
    log = journal(box, "-u", "natlink", "-n", "8").splitlines()
    assert "exit: success exited 0" in log, log  # exited by itself with 0: not killed, not a timeout
    assert any(line.startswith("natlink.service: stopped in") for line in log), log


def test_timer_schedules_and_fires_the_oneshot(box):
    """With natlink.service stopped (the test before), the timer's one-shot runs a whole round."""
    box.run("systemctl", "start", "natlink-oneshot.timer")
    props = box.show("natlink-oneshot.timer", "ActiveState", "Triggers", "NextElapseUSecMonotonic")
    assert props["ActiveState"] == "active" and props["Triggers"] == "natlink-oneshot.service"
    assert props["NextElapseUSecMonotonic"] not in ("", "0", "infinity")
    before = box.show("natlink-oneshot.service", "ExecMainExitTimestampMonotonic")["ExecMainExitTimestampMonotonic"]
    # the shipped timer first fires a minute after boot; a drop-in adds a 1 s trigger to see it fire now
    box.write("/etc/systemd/system/natlink-oneshot.timer.d/soon.conf", "[Timer]\nOnActiveSec=1s\nRandomizedDelaySec=0\n")
    box.run("systemctl", "daemon-reload")
    box.run("systemctl", "restart", "natlink-oneshot.timer")
    wait_for("the timer ran the one-shot", lambda: box.show("natlink-oneshot.service", "ExecMainExitTimestampMonotonic")
             ["ExecMainExitTimestampMonotonic"] != before, timeout=30)
    props = box.show("natlink-oneshot.service", "Result", "ExecMainStatus")
    assert props == {"Result": "success", "ExecMainStatus": "0"}, journal(box, "-u", "natlink-oneshot")
    box.run("systemctl", "stop", "natlink-oneshot.timer")
    box.run("rm", "/etc/systemd/system/natlink-oneshot.timer.d/soon.conf")
    box.run("systemctl", "daemon-reload")


def test_config_error_does_not_restart_in_a_loop(box):
    """D2: exit 2 at start stays failed (RestartPreventExitStatus=2) instead of restarting every 5 s."""
    box.write("/etc/natlink/config.toml", GOOD + '\n[service.nonsense]\nkey = 1\n')
    assert box.run("systemctl", "start", "natlink", check=False).returncode != 0
    time.sleep(7)  # longer than RestartSec=5s
    props = box.show("natlink.service", "ActiveState", "NRestarts", "ExecMainStatus")
    assert props["ActiveState"] == "failed" and props["ExecMainStatus"] == "2" and props["NRestarts"] == "0", props
    box.write("/etc/natlink/config.toml", GOOD)
    box.run("systemctl", "reset-failed", "natlink")


def seccomp_kills(after: float) -> list[str]:
    """The kernel's audit records of processes seccomp killed since `after` (unix time): a child such as `ip`
    dies there too, where systemd's journal only tells of a unit's main process. They reach the kernel log, or
    auditd's log where auditd runs; each carries its time as audit(SECONDS:SERIAL)."""
    lines = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30).stdout.splitlines()
    with contextlib.suppress(OSError):
        lines += Path("/var/log/audit/audit.log").read_text(errors="replace").splitlines()
    kills = []
    for line in lines:
        stamp = re.search(r"audit\((\d+\.\d+):\d+\)", line)
        if stamp and float(stamp.group(1)) > after and ("type=1326" in line or "type=SECCOMP" in line) \
                and " sig=31 " in line:
            kills.append(line)
    return kills


def test_no_syscall_was_blocked(kernel_mark, box, uids):
    """Everything above ran with SystemCallErrorNumber= emptied: a blocked syscall would have killed (SIGSYS),
    natlink's child processes (`ip` for the interface:lo source) included."""
    for unit in ("natlink.service", "natlink-oneshot.service", "natlink-reflector.service"):
        # the drop-in took: systemd shows "kill" as its sentinel INT_MAX-1 (the shipped EPERM would be 1)
        assert box.show(unit, "SystemCallErrorNumber")["SystemCallErrorNumber"] in ("kill", "2147483646"), unit
    uids.setdefault("natlink.service", box.run("stat", "-c", "%u", STATE).stdout.strip())
    ours = [line for line in seccomp_kills(kernel_mark) if any(f" uid={uid} " in line for uid in uids.values())]
    assert ours == [], ours
    killed = [line for line in journal(box).splitlines() if "status=31/SYS" in line]
    assert killed == [], killed
    # the control: the same filter, a dynamic user, a @privileged call (chroot) -> killed, and seen in both places
    before = len(seccomp_kills(kernel_mark))
    control = box.run("systemd-run", "--wait", "--quiet", "-p", "DynamicUser=yes", "-p", "SystemCallFilter=@system-service",
                      "-p", "SystemCallFilter=~@privileged @resources", "python3", "-c",
                      "import os; os.chroot('/')", check=False)
    assert control.returncode != 0 and "status=31/SYS" in journal(box)
    wait_for("the control's audit line", lambda: len(seccomp_kills(kernel_mark)) > before, timeout=5)


def test_security_exposure_reported(box, figures):
    scores = {}
    for unit in ("natlink.service", "natlink-oneshot.service", "natlink-reflector.service"):
        out = box.run("systemd-analyze", "security", "--no-pager", unit).stdout
        found = re.search(r"Overall exposure level for \S+: ([\d.]+)", out)
        assert found, out
        scores[unit] = float(found.group(1))
    figures["exposure"] = scores
    assert all(score < 2.0 for score in scores.values()), scores
