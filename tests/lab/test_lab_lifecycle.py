"""The lab leaves nothing behind: not after stop(), not after its owner is killed or
SIGTERMed, and two labs at once do not see each other. Also the netns/call helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from natlink.lab import Lab, LabError
from natlink.lab.procs import pid_alive
from natlink.lab.registry import REGISTRY_ROOT, ns_name

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def host_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def lab_namespaces(tag: str) -> list[str]:
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return [n for n in names if n.startswith(ns_name(tag, ""))]


def assert_gone(tag: str, pids: list[int], workdir: str) -> None:
    assert lab_namespaces(tag) == []
    assert f"nl{tag}" not in host_links()  # no veth/bridge of this lab leaked into the host
    for pid in pids:
        assert not pid_alive(pid), f"process {pid} survived"
    assert not os.path.exists(workdir)
    assert not os.path.exists(os.path.join(REGISTRY_ROOT, tag))


def test_stop_removes_everything() -> None:
    lab = Lab()
    lab.start()
    tag, workdir = lab.tag, lab.workdir
    pids = [p for p in (lab.miniupnpd_pid, lab.knot_pid) if p]
    sleeper = lab.popen("wan", ["sleep", "60"])
    lab.tcp_service("lan", 3389)
    assert len(pids) == 2 and len(os.listdir(workdir)) > 0
    assert len(lab_namespaces(tag)) == 4
    started = time.monotonic()
    lab.stop()
    assert time.monotonic() - started < 2
    assert sleeper.poll() is not None
    assert_gone(tag, pids + [sleeper.pid], workdir)
    lab.stop()  # idempotent


def test_stop_before_start_and_failed_start_are_harmless() -> None:
    Lab().stop()
    with pytest.raises(LabError):
        Lab(scenario="moon")
    with pytest.raises(LabError):
        Lab(tag="Bad-Tag")
    with Lab(knot=False, lan2=False) as first:
        with pytest.raises(LabError, match="already exists"):
            Lab(tag=first.tag).start()


def test_context_manager_cleans_up_on_exception() -> None:
    with pytest.raises(RuntimeError):
        with Lab(knot=False) as lab:
            tag, workdir, pids = lab.tag, lab.workdir, [lab.miniupnpd_pid]
            raise RuntimeError("test failed")
    assert_gone(tag, [p for p in pids if p], workdir)


def _child_script(body: str) -> str:
    return textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from natlink.lab import Lab
        lab = Lab(lan2=False)
        lab.start()
        print(lab.tag, lab.workdir, lab.miniupnpd_pid, lab.knot_pid, flush=True)
        """
    ) + textwrap.dedent(body)


def test_cleanup_stale_after_owner_was_killed() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _child_script("os.kill(os.getpid(), signal.SIGKILL)\n")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    tag, workdir, *pids = out.stdout.split()
    assert lab_namespaces(tag)
    assert tag in Lab.cleanup_stale().removed_tags
    assert_gone(tag, [int(p) for p in pids], workdir)


def test_sigterm_tears_the_lab_down() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _child_script("time.sleep(60)\n")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        tag, workdir, *pids = child.stdout.readline().split()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 128 + signal.SIGTERM
        assert_gone(tag, [int(p) for p in pids], workdir)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_two_labs_in_parallel_do_not_collide() -> None:
    with Lab(lan2=False) as one, Lab(lan2=False) as two:
        assert one.tag != two.tag and one.ns("rtr") != two.ns("rtr")
        one.tcp_service("lan", 3389, banner=b"one\n")
        two.tcp_service("lan", 3389, banner=b"two\n")
        for lab in (one, two):
            result = lab.run("lan", ["upnpc", "-u", lab.igd_url, "-e", "t", "-a", lab.lan_ip, "3389", "3390", "TCP"])
            assert result.returncode == 0
        assert one.tcp_banner("wan", one.wan_ip, 3390) == b"one\n"
        assert two.tcp_banner("wan", two.wan_ip, 3390) == b"two\n"
        one.router_reboot()
        assert two.tcp_banner("wan", two.wan_ip, 3390) == b"two\n"


def test_parallel_start_from_threads() -> None:
    labs = [Lab(knot=False, lan2=False) for _ in range(3)]
    errors: list[BaseException] = []

    def start(lab: Lab) -> None:
        try:
            lab.start()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(lab,)) for lab in labs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for lab in labs:
            assert lab.run("lan", ["natpmpc", "-g", lab.gateway]).returncode == 0
    finally:
        for lab in labs:
            lab.stop()


def test_netns_context_manager_and_call() -> None:
    with Lab(knot=False, lan2=False) as lab:
        outside = os.stat("/proc/thread-self/ns/net").st_ino
        with lab.netns("lan"):
            assert os.stat("/proc/thread-self/ns/net").st_ino == os.stat(f"/run/netns/{lab.ns('lan')}").st_ino
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        assert os.stat("/proc/thread-self/ns/net").st_ino == outside
        try:
            sock.connect((lab.gateway, 5351))  # the socket stays in the lan netns
            assert sock.getsockname()[0] == lab.lan_ip
        finally:
            sock.close()

        def my_address() -> str:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((lab.wan_host_ip, 9))
                return s.getsockname()[0]

        assert lab.call("lan", my_address) == lab.lan_ip
        assert lab.call("rtr", my_address) == lab.wan_ip
        with pytest.raises(ZeroDivisionError):
            lab.call("lan", lambda: 1 / 0)
        with pytest.raises(LabError):
            lab.ns("lan2")
        assert os.stat("/proc/thread-self/ns/net").st_ino == outside
