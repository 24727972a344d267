"""`natlink reload`: the service records its verdict on each SIGHUP (health state "reload"), and the command
waits for that verdict. The pure parts as tables; then the command against a real `natlink run` process
(loopback only: NAT-PMP to 127.0.0.1, a dyndns2 server on 127.0.0.1 that refuses connections)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from natlink.service.health import Health, reload_count, reload_verdict
from natlink.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
PID = 4242


@pytest.mark.parametrize(("doc", "count"), [
    (None, 0),
    ({}, 0),
    ({"pid": PID}, 0),
    ({"pid": PID, "reload": {"count": 3, "ok": True}}, 3),
    ({"pid": PID, "reload": {"count": "3"}}, 0),  # not a count: as if none
    ({"pid": PID, "reload": {"count": True}}, 0),
])
def test_reload_count(doc, count):
    assert reload_count(doc) == count


ACCEPTED = {"count": 2, "at": 1.0, "ok": True, "error": None}
REJECTED = {"count": 2, "at": 1.0, "ok": False, "error": "c.toml:3: cannot read the secret"}


@pytest.mark.parametrize(("doc", "seen", "verdict"), [
    (None, 0, None),  # no state yet
    ({"pid": PID}, 0, None),  # the service has not judged any reload
    ({"pid": PID, "reload": ACCEPTED}, 2, None),  # the verdict seen before signalling: not this reload's
    ({"pid": PID, "reload": ACCEPTED}, 1, ACCEPTED),
    ({"pid": PID, "reload": REJECTED}, 1, REJECTED),
    ({"pid": PID, "reload": ACCEPTED}, 0, ACCEPTED),  # two reloads judged since: the newest counts
    ({"pid": PID + 1, "reload": ACCEPTED}, 1, None),  # another process's state (a restarted service)
])
def test_reload_verdict(doc, seen, verdict):
    assert reload_verdict(doc, PID, seen) == verdict


def test_health_counts_each_verdict_and_saves_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    health = Health(store)
    health.reloaded(True, None)
    health.reloaded(False, "bad secret")
    health.save()
    doc = store.load("service")
    assert reload_count(doc) == 2 and doc["reload"]["ok"] is False and doc["reload"]["error"] == "bad secret"
    assert reload_verdict(doc, os.getpid(), 1)["error"] == "bad secret"
    assert Health(store).snapshot().get("reload") is None  # a new process counts from 0: its pid tells them apart


def natlink(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "natlink", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "1000"})


def write_config(directory: Path) -> Path:
    path = directory / "natlink.toml"
    path.write_text(f"""
[router]
protocols = ["natpmp"]
gateway = "127.0.0.1"
lan_ip = "127.0.0.1"
timeout = 1

[public_ip]
sources = ["interface:lo"]

[[ddns]]
name = "home"
provider = "dyndns2"
server = "http://127.0.0.1:9"
hostnames = ["home.example.test"]
username = "home"
password_file = "{directory / 'password'}"

[service]
state_dir = "{directory / 'state'}"
""")
    return path


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    (tmp_path / "password").write_text("s3cret-value\n")
    (tmp_path / "password").chmod(0o600)
    cfg = write_config(tmp_path)
    log = (tmp_path / "log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "natlink", "-c", str(cfg), "run"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    try:
        store = StateStore(tmp_path / "state")
        deadline = time.monotonic() + 20
        while (store.load("service") or {}).get("pid") != proc.pid:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.05)
        yield cfg, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def test_reload_waits_for_the_services_verdict(service, tmp_path: Path) -> None:
    cfg, proc = service
    ok = natlink("-c", str(cfg), "reload")
    assert ok.returncode == 0, ok.stderr
    assert f"natlink service (pid {proc.pid}) reloaded its config" in ok.stdout

    # check-config would not see this (a credential it cannot read); only the service can reject it
    (tmp_path / "password").unlink()
    bad = natlink("-c", str(cfg), "reload", "--pid", str(proc.pid))
    assert bad.returncode == 2, bad.stderr
    line, = bad.stderr.splitlines()
    assert f"natlink service (pid {proc.pid}) rejected the new config and keeps running the old one" in line
    assert "cannot read secret file" in line and "s3cret" not in line and "Traceback" not in bad.stderr
    assert proc.poll() is None and "reload rejected" in (tmp_path / "log").read_text()

    doc = json.loads(natlink("--json", "-c", str(cfg), "reload").stdout)
    assert doc["ok"] is False and "cannot read secret file" in doc["error"]

    (tmp_path / "password").write_text("s3cret-value\n")
    again = json.loads(natlink("--json", "-c", str(cfg), "reload").stdout)
    assert again["ok"] is True and again["pid"] == proc.pid and again["reload"]["count"] == 4


def test_reload_without_a_service_or_of_another_pid(service, tmp_path: Path) -> None:
    cfg, proc = service
    other = natlink("-c", str(cfg), "reload", "--pid", str(os.getpid()))
    assert other.returncode == 1 and f"pid {os.getpid()} is not the service recorded" in other.stderr
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    gone = natlink("-c", str(cfg), "reload")
    assert gone.returncode == 1 and "no running natlink service recorded" in gone.stderr
    assert "Traceback" not in other.stderr + gone.stderr
