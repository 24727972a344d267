"""A Debian bookworm container booted with systemd as PID 1 (systemd-nspawn -b) for tests/lab/test_systemd_real.py.
Not a test module.

The base root file system (debootstrap --variant=minbase plus natlink's dependencies) is built once per machine
and cached under /var/cache/natlink-test-rootfs/<hash of what goes in>/; each test session copies it, installs
natlink from this checkout into the copy (pip, offline), and boots the copy with a private network (loopback
only: nothing inside can reach any other host). Facts behind the flags are in shared/lab-notes.md ("A real
systemd"): no host systemd here, so --keep-unit --register=no, and a private tmpfs on /run/systemd/nspawn."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NATLINK_ROOTFS_CACHE", "/var/cache/natlink-test-rootfs"))
MIRROR = os.environ.get("NATLINK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# Debian's packages where they meet pyproject's minimums (python3-miniupnpc: no compiler needed); pip for the rest.
FROM_DEBIAN = {"miniupnpc": "python3-miniupnpc", "requests": "python3-requests"}
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-pip", "python3-setuptools", "iproute2", "procps",
            "ca-certificates", *FROM_DEBIAN.values())
TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "unshare")
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"  # pip inside trusts only what this host trusts (lab-notes)


def missing_tools() -> list[str]:
    problems = [f"{tool} not found (apt-get install --no-install-recommends systemd-container debootstrap)"
                for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        problems.append("needs root")
    return problems


def require_tools(what: str) -> None:
    """Skip a test that needs these tools when they are missing; under CI=true fail instead (lab tests must run)."""
    import pytest

    problems = missing_tools()
    if problems:
        message = f"{what} unavailable: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message + " (CI=true: lab tests must run)", pytrace=False)
        pytest.skip(message)


def pip_deps() -> list[str]:
    """pyproject's dependencies that Debian does not provide here (a new one rebuilds the cached base)."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return sorted(d for d in deps if re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() not in FROM_DEBIAN)


def _rootfs_key() -> str:
    recipe = "\n".join([SUITE, MIRROR, *PACKAGES, *pip_deps(), "v1"])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _nspawn(root: Path, *args: str, network: bool = False) -> list[str]:
    """systemd-nspawn in a private mount namespace with its own tmpfs on /run/systemd/nspawn (no host systemd)."""
    flags = ["--keep-unit", "--register=no", "--quiet", "-D", str(root)]
    if not network:
        flags.append("--private-network")
    inner = " ".join(["exec", "systemd-nspawn", *(_quote(a) for a in flags + list(args))])
    Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mount -t tmpfs tmpfs /run/systemd/nspawn && {inner}"]


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _run(argv: list[str], timeout: float) -> None:
    """A build step; its failure names the step and ends with what it printed."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)[:200]} exited {result.returncode}: {(result.stdout + result.stderr)[-3000:]}")


def _build_base(target: Path) -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
    try:
        root = work / "root"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR], 900)
        # Package installs reach PyPI from a non-booted nspawn that shares the host's network (only here).
        env = ["--setenv=PIP_ROOT_USER_ACTION=ignore", "--setenv=PIP_DISABLE_PIP_VERSION_CHECK=1"]
        if Path(HOST_CA).exists():
            env += [f"--bind-ro={HOST_CA}:/run/host-ca.crt", "--setenv=PIP_CERT=/run/host-ca.crt"]
        _run(_nspawn(root, *env, "python3", "-m", "pip", "install", "-q", "--break-system-packages", *pip_deps(),
                     network=True), 600)
        (root / "etc/hostname").write_text("natlink-test\n")
        # Without /etc/hosts a reverse lookup of 127.0.0.1 stalls; a resolver that exists nowhere keeps every
        # name lookup inside the container (it has loopback only anyway).
        (root / "etc/hosts").write_text("127.0.0.1 localhost natlink-test\n::1 localhost ip6-localhost\n")
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
        root.rename(target)
        log.info("built %s in %.0fs", target, time.monotonic() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def base_rootfs() -> Path:
    """The cached base root file system, built on first use (one builder at a time: a lock file)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"{SUITE}-{_rootfs_key()}"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "usr/bin/python3").exists():
            for old in CACHE.glob(f"{SUITE}-*"):  # earlier recipes' builds (this directory is ours alone)
                shutil.rmtree(old, ignore_errors=True)
            _build_base(target)
    return target


@dataclass
class Container:
    """One booted container: run() commands in it as root, write() files into it; stop() ends only it."""

    root: Path
    workdir: Path
    nspawn: subprocess.Popen[bytes] | None = None
    leader: int | None = None  # the container's PID 1 as the host sees it
    boot_seconds: float = 0.0
    console: Path = field(init=False)

    def __post_init__(self) -> None:
        self.console = self.workdir / "console.log"

    def boot(self, timeout: float = 60.0) -> None:
        started = time.monotonic()
        with open(self.console, "wb") as console:
            self.nspawn = subprocess.Popen(_nspawn(self.root, "--resolv-conf=off", "--console=read-only", "-b"),
                                           stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited ({self.nspawn.returncode}): {self.console.read_text()[-2000:]}")
            self.leader = self.leader or _container_init(self.nspawn.pid)
            if self.leader is not None:
                state = self.run("systemctl", "is-system-running", check=False, timeout=10).stdout.strip()
                if state in ("running", "degraded"):
                    self.boot_seconds = time.monotonic() - started
                    if state == "degraded":
                        log.warning("container degraded: %s", self.run("systemctl", "--failed", check=False).stdout)
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the container did not boot within {timeout:.0f}s: {self.console.read_text()[-2000:]}")

    def run(self, *argv: str, check: bool = True, timeout: float = 60.0,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        if self.leader is None:
            raise RuntimeError("the container is not booted")
        result = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *argv], capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            recent = ""
            if argv[0] == "systemctl":  # what the unit said is the useful part of a failed start/reload
                recent = self.run("journalctl", "--no-pager", "-n", "25", "-o", "short-monotonic", check=False).stdout
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stdout}{result.stderr}{recent}")
        return result

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """A file on the container's disk (not under /run or /tmp: those are the container's own tmpfs)."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def stop(self) -> None:
        """Power off the container we booted (by the PIDs recorded at boot), then kill what is left of it."""
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.nspawn.pid, signal.SIGTERM)  # nspawn asks the container's systemd to power off
        try:
            self.nspawn.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in (self.leader, self.nspawn.pid):
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.nspawn.wait(timeout=10)


def _container_init(nspawn_pid: int) -> int | None:
    """The child of our systemd-nspawn that is PID 1 in its own PID namespace."""
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{nspawn_pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                status = Path(f"/proc/{child}/status").read_text()
                nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
                if nspid and nspid[-1] == "1":
                    return int(child)
    return None


def install_natlink(root: Path) -> None:
    """pip install this checkout into the copy, offline (its dependencies are in the base already)."""
    src = root / "var/tmp/natlink-src"  # not /tmp: nspawn mounts a fresh tmpfs there
    shutil.rmtree(src, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                            "natlink", "pyproject.toml", "README.md"],
                           cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    _run(_nspawn(root, "--setenv=PIP_ROOT_USER_ACTION=ignore", "python3", "-m", "pip", "install", "-q",
                 "--break-system-packages", "--no-deps", "--no-build-isolation", "--no-index", "/var/tmp/natlink-src"), 300)
    shutil.rmtree(src, ignore_errors=True)


@contextlib.contextmanager
def booted_container() -> Iterator[Container]:
    """Copy the cached base, install natlink and the units, boot; always powered off and removed after."""
    base = base_rootfs()
    workdir = Path(tempfile.mkdtemp(prefix="natlink-systemd-", dir="/var/tmp"))
    container = Container(root=workdir / "root", workdir=workdir)
    try:
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(container.root)], check=True, timeout=300)
        install_natlink(container.root)
        for unit in (REPO / "systemd").iterdir():
            if unit.suffix in (".service", ".timer"):
                container.write(f"/etc/systemd/system/{unit.name}", unit.read_text())
        container.boot()
        yield container
    finally:
        container.stop()
        shutil.rmtree(workdir, ignore_errors=True)
