"""Network-namespace plumbing for the lab: named namespaces, veths, setns, processes.

Everything here shells out to iproute2 (``ip``) or uses ``setns(2)`` through ctypes,
because Python 3.11 has no ``os.setns`` and the lab must stay stdlib-only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from natlink.lab.errors import LabError
from natlink.lab.prereq import tool
from natlink.lab.procs import pid_alive

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

T = TypeVar("T")


def _libc() -> ctypes.CDLL:
    """libc handle with errno capture (looked up per call; cheap, and no module state)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def ns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def run_cmd(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture text output; turn failures and timeouts into LabError."""
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=full_env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout}s: {' '.join(argv)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]}") from exc
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed (exit {proc.returncode}): {' '.join(argv)}: "
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip [-n ns] args...``"""
    argv = [tool("ip")] + (["-n", ns] if ns else []) + list(args)
    return run_cmd(argv, check=check, timeout=10)


def list_netns() -> list[str]:
    """Names of all named network namespaces (from /run/netns, no subprocess)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def add_netns(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def delete_netns(name: str) -> None:
    """Kill every process in the namespace, then remove its name. Never raises."""
    kill_netns_pids(name)
    with contextlib.suppress(LabError):
        ip("netns", "delete", name, check=False)
    # `ip netns delete` can leave the mount-point file behind if it was busy.
    with contextlib.suppress(OSError):
        os.unlink(ns_path(name))


def netns_pids(name: str) -> list[int]:
    """PIDs of processes whose network namespace is ``name`` (like ``ip netns pids``)."""
    try:
        target = os.stat(ns_path(name))
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            pids.append(int(entry))
    return [p for p in pids if p != os.getpid()]


def kill_netns_pids(name: str, grace: float = 1.0) -> None:
    """SIGTERM everything living in the namespace, SIGKILL what is left after ``grace``."""
    pids = netns_pids(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if pid_alive(p)]
        if pids:
            time.sleep(0.01)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def add_veth(name_a: str, ns_a: str, name_b: str, ns_b: str) -> None:
    """Create a veth pair directly inside two namespaces (never visible in the host's)."""
    ip("link", "add", "name", name_a, "netns", ns_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)


@contextlib.contextmanager
def enter_netns(name: str) -> Iterator[None]:
    """Switch the *calling thread* into netns ``name``; switch back on exit.

    setns(CLONE_NEWNET) is per-thread, so other threads are unaffected; sockets created
    inside keep their namespace after we switch back.
    """
    libc = _libc()
    orig_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target_fd = os.open(ns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise LabError(f"network namespace {name!r} does not exist") from exc
        try:
            if libc.setns(target_fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise LabError(f"setns({name}) failed: {os.strerror(err)}")
        finally:
            os.close(target_fd)
        try:
            yield
        finally:
            if libc.setns(orig_fd, CLONE_NEWNET) != 0:  # pragma: no cover - would be a kernel bug
                err = ctypes.get_errno()
                raise LabError(f"could not return to the original netns: {os.strerror(err)}")
    finally:
        os.close(orig_fd)


def call_in_netns(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in a fresh thread inside netns ``name``; return its result or re-raise.

    A separate thread keeps the caller's own namespace untouched even if ``fn`` misbehaves.
    """
    result: list[Any] = []
    error: list[BaseException] = []

    def runner() -> None:
        try:
            with enter_netns(name):
                result.append(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            error.append(exc)

    thread = threading.Thread(target=runner, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def write_sysctl(ns: str, key: str, value: str | int) -> None:
    """Set a sysctl of netns ``ns`` (/proc/sys/net is resolved per thread namespace)."""
    path = "/proc/sys/" + key.replace(".", "/")

    def _write() -> None:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(f"{value}\n")

    try:
        call_in_netns(ns, _write)
    except OSError as exc:
        raise LabError(f"cannot set {key}={value} in {ns}: {exc}") from exc

