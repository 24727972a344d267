"""One service per state directory, and a status that tells the truth about what it cannot see: the real
`natlink` command in subprocesses, some as an unprivileged user (setpriv), against real directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from natlink.config import parse_config
from natlink.state import InstanceLock, StateStore

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


# Root without the capabilities that bypass file permissions: sees a directory of another user's as an admin
# does. (A real unprivileged user cannot run this interpreter's site-packages, which live under /root.)
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def natlink(*args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "natlink", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "1000", **(env or {})})


def service_owned(state: Path) -> None:
    """The state as the service's (dynamic) user leaves it: owned by that user, not by whoever runs status."""
    for p in (state, *state.iterdir()):
        os.chown(p, NOBODY, NOBODY)


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory an unprivileged user can enter (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="natlink-instance-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d)


def config(directory: Path, state: Path, extra: str = "") -> Path:
    path = directory / "natlink.toml"
    path.write_text(f'[public_ip]\nsources = ["https://127.0.0.1:9/ip"]\n{extra}\n'
                    f'[service]\nstate_dir = "{state}"\n')
    path.chmod(0o644)
    return path


def test_a_second_run_exits_1_naming_the_pid(tmp_path: Path) -> None:
    cfg = config(tmp_path, tmp_path / "state")
    lock = InstanceLock(tmp_path / "state")
    lock.acquire()  # what a running service holds
    try:
        for args in (["run"], ["run", "--once"]):
            proc = natlink("-c", str(cfg), *args)
            assert proc.returncode == 1, proc.stderr
            assert f"already running with state directory {tmp_path / 'state'}, pid {os.getpid()}" in proc.stderr
            assert "Traceback" not in proc.stderr
        assert not StateStore(tmp_path / "state").path("service").exists()  # nothing of ours overwritten
    finally:
        lock.release()
    assert InstanceLock(tmp_path / "state").holder() is None


def test_lock_holder_is_seen_and_released(tmp_path: Path) -> None:
    lock = InstanceLock(tmp_path)
    assert lock.holder() is None
    lock.acquire()
    assert lock.holder() == os.getpid()
    with pytest.raises(Exception, match=f"pid {os.getpid()}"):
        InstanceLock(tmp_path).acquire()
    lock.release()
    assert lock.holder() is None


def test_unreadable_state_dir_is_permission_denied_not_never_run(public_dir: Path) -> None:
    state = public_dir / "state"
    StateStore(state).save("service", {"pid": 1, "running": True, "mode": "service"})
    state.chmod(0o700)  # the service's only, like /var/lib/private/natlink under DynamicUser=yes
    service_owned(state)
    cfg = config(public_dir, state)
    proc = natlink("-c", str(cfg), "status", prefix=tuple(NO_DAC))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[0].startswith(f"natlink: cannot read {state}: permission denied — run "
                                                          "with sudo")
    assert "never run" not in proc.stdout + proc.stderr


def test_unreadable_state_files_are_permission_denied_too(public_dir: Path) -> None:
    state = public_dir / "state"
    StateStore(state).save("service", {"pid": 1, "running": True, "mode": "service"})
    state.chmod(0o755)
    (state / "service.json").chmod(0o600)  # UMask=0077 in the unit
    service_owned(state)
    proc = natlink("-c", str(config(public_dir, state)), "status", prefix=tuple(NO_DAC))
    assert proc.returncode == 1 and f"cannot read {state / 'service.json'}: permission denied" in proc.stderr


def test_a_one_shot_write_waits_for_the_state_write_lock(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save("x", {"n": 0})
    code = ("import sys; from natlink.state import StateStore; "
            f"StateStore({str(tmp_path)!r}).save('x', {{'n': 1}}); print('written')")
    with store.write_lock():
        writer = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            writer.wait(1.0)
        except subprocess.TimeoutExpired:
            pass
        assert writer.poll() is None and store.load("x") == {"n": 0}  # it waits while we hold the lock
    assert writer.wait(10) == 0 and store.load("x") == {"n": 1}


def test_status_and_mappings_open_no_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x")
    secret.chmod(0)
    extra = ('[[ddns]]\nname = "d"\nprovider = "dyndns2"\nhostnames = ["a.example.net"]\n'
             f'server = "http://127.0.0.1:9"\nusername = "u"\npassword_file = "{tmp_path / "missing-pw"}"\n')
    cfg = config(tmp_path, tmp_path / "state", extra)
    proc = natlink("-c", str(cfg), "--json", "status")
    doc = json.loads(proc.stdout)
    assert doc["config"]["error"] is None and doc["ddns"][0]["name"] == "d", proc.stderr
    assert "missing-pw" not in proc.stderr
    with pytest.raises(Exception, match="missing-pw"):  # commands that use the secret still check it
        parse_config(cfg.read_text(), cfg)


def test_status_with_a_broken_config_shows_the_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = StateStore(state)
    store.save("publicip", {"public_ipv4": "11.0.0.2", "verdict": "public", "checked_at": 1})
    store.save("ddns-home", {"published": {"ipv4": "11.0.0.2"}, "last_outcome": "good", "provider": "rfc2136",
                             "last_success": 1, "last_attempt": 1})
    cfg = config(tmp_path, state)
    cfg.write_text(cfg.read_text() + '\n[[mapping]]\nname = "rdp"\nexternal_port = "not a port"\n')
    proc = natlink("-c", str(cfg), "status")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("config:    natlink.toml:") and "external_port" in lines[0]
    assert "what follows is what the service last saw" in lines[0]
    assert any(x.startswith("public IP: 11.0.0.2 (public") for x in lines)
    assert any(x.startswith("ddns      home (rfc2136): 11.0.0.2;") for x in lines)
    assert "config does not load" in lines[-1]


def test_per_user_state_dir_in_xdg_state_home(public_dir: Path) -> None:
    home = public_dir / "home"
    (home / ".config" / "natlink").mkdir(parents=True)
    os.chown(home, NOBODY, NOBODY)
    for d in (home / ".config", home / ".config" / "natlink"):
        os.chown(d, NOBODY, NOBODY)
    cfg = home / ".config" / "natlink" / "config.toml"
    cfg.write_text('[public_ip]\nsources = ["https://127.0.0.1:9/ip"]\n')
    cfg.chmod(0o644)
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": "", "XDG_CONFIG_HOME": "", "STATE_DIRECTORY": "",
           "NATLINK_CONFIG": "", "PYTHONPATH": str(ROOT)}
    # As a real unprivileged user: the config loader (stdlib only, so this interpreter runs without its
    # root-only site-packages) finds ~/.config/natlink/config.toml and picks the state directory.
    code = "from natlink.config import load_config; print(load_config().service.state_dir)"

    def state_dir(**extra: str) -> str:
        proc = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                               "-c", code], cwd=public_dir, capture_output=True, text=True, timeout=60,
                              env={**env, **extra})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert state_dir() == str(home / ".local" / "state" / "natlink")
    assert state_dir(XDG_STATE_HOME=str(home / "st")) == str(home / "st" / "natlink")
    # root with the same file keeps the system default
    assert parse_config(cfg.read_text(), cfg).service.state_dir == "/var/lib/natlink"
