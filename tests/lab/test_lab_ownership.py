"""natlink removes only what it can prove it created: a namespace shaped like a lab's but without a record,
a live second lab, and a lab whose owner sits in another PID namespace all survive `natlink demo` and
cleanup; a lab whose owner provably died is removed, and the demo says so."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from natlink.lab import Lab
from natlink.lab import registry
from natlink.lab.netns import list_netns

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def look_alikes() -> Iterator[list[str]]:
    """Namespaces a person could have made, one exactly in the shape of a lab's: the test deletes only these."""
    names = [registry.ns_name("zz" + secrets.token_hex(2), "lan"), f"natlink-lab-home{secrets.token_hex(2)}-vpn"]
    made = []
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            made.append(name)
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _start_child_lab(*wrapper: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from natlink.lab import Lab
        lab = Lab(knot=False, miniupnpd=False, lan2=False)
        lab.start()
        print(lab.tag, flush=True)
        time.sleep(120)
        """)
    return subprocess.Popen([*wrapper, sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def _tag_of(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    tag = child.stdout.readline().strip()
    assert registry.valid_tag(tag), tag
    return tag


def _present(tag: str) -> list[str]:
    return sorted(set(registry.lab_ns_names(tag)) & set(list_netns()))


def test_demo_spares_look_alikes_and_a_live_lab_and_removes_a_dead_ones(look_alikes: list[str]) -> None:
    with Lab(knot=False, lan2=False) as live:
        dead = _start_child_lab()
        dead_tag = _tag_of(dead)
        dead.send_signal(signal.SIGKILL)  # no teardown: namespaces and record stay behind
        dead.wait(timeout=10)
        assert _present(dead_tag)
        proc = subprocess.run([sys.executable, "-m", "natlink", "demo"], cwd=REPO, capture_output=True,
                              text=True, timeout=90, env=ENV)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert set(look_alikes) <= set(list_netns())
        assert _present(live.tag) == sorted(live.ns(h) for h in live.hosts)
        assert live.run("lan", ["natpmpc", "-g", live.gateway]).returncode == 0  # its miniupnpd still runs
        assert os.path.exists(registry.record_dir(live.tag))
        assert f"{look_alikes[0]} " in proc.stderr.replace(",", " ") and "no owner record" in proc.stderr
        assert look_alikes[1] not in proc.stderr  # not even lab-shaped: not mentioned
    assert _present(dead_tag) == [] and not os.path.exists(registry.record_dir(dead_tag))
    assert f"removed a lab left by a dead natlink process (lab {dead_tag}:" in proc.stderr


def test_owner_in_another_pid_namespace_is_never_judged_dead() -> None:
    # Its own /proc (--mount-proc, in a private mount namespace): the child's PIDs mean nothing here.
    child = _start_child_lab("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL")
    tag = None
    try:
        tag = _tag_of(child)
        record = registry.read_record(tag)
        assert record is not None and record.pidns != registry.here().pidns
        assert tag in Lab.cleanup_stale().unproven
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # Its owner is gone now, but nothing seen from here proves it: the record and names stay.
        cleanup = Lab.cleanup_stale()
        assert tag in cleanup.unproven and tag not in cleanup.removed
        assert os.path.exists(registry.record_dir(tag)) and _present(tag)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if tag:
            registry.destroy(tag)  # ours: the test made it
