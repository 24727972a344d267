"""A fresh Debian 12 for tests/lab/test_readme_install.py: what the README's quick start meets on a new machine.
Not a test module.

The root file system is `debootstrap bookworm` (the default variant: every package of priority required and
important, as a Debian install without desktop) plus the installer's "standard system utilities" that the checks
use (man-db, bash-completion); no Python packages, no sudo. It is built once per machine and cached next to the
systemd test's (tests/lab/systemd_container.py) in /var/cache/natlink-test-rootfs/; each run works on a copy.

Commands run in a non-booted systemd-nspawn (no systemd as PID 1 is needed for any of the README's steps): with
the host's network only for the steps that download (apt-get from the Debian mirror, pip from PyPI — as the rootfs
build and .ci/run do), with --private-network (loopback only) for everything natlink itself runs. Downloads are
kept in a cache directory bound into each copy, so the second scenario and later runs fetch nothing new."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import systemd_container as sc

STANDARD = ("man-db", "bash-completion")  # from the installer's "standard system utilities" task
DOWNLOADS = sc.CACHE / "downloads"  # apt's archives and pip's cache, shared by every copy
USER = "alice"
PIP_CA = "/run/host-ca.crt"  # named by the copy's /etc/pip.conf (sudo drops PIP_CERT from the environment)


def fresh_rootfs() -> Path:
    """The cached fresh bookworm, built on first use (one builder at a time, the systemd test's lock)."""
    sc.CACHE.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256("\n".join([sc.SUITE, sc.MIRROR, *STANDARD, "fresh-v1"]).encode()).hexdigest()[:16]
    target = sc.CACHE / f"fresh-{sc.SUITE}-{key}"
    with open(sc.CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "usr/bin/apt-get").exists():
            for old in sc.CACHE.glob(f"fresh-{sc.SUITE}-*"):  # earlier recipes' builds (this directory is ours)
                shutil.rmtree(old, ignore_errors=True)
            work = Path(tempfile.mkdtemp(prefix="build-fresh-", dir=sc.CACHE))
            try:
                root = work / "root"
                sc._run(["debootstrap", f"--include={','.join(STANDARD)}", sc.SUITE, str(root), sc.MIRROR], 1200)
                (root / "etc/hostname").write_text("fresh-debian\n")
                (root / "etc/hosts").write_text("127.0.0.1 localhost fresh-debian\n::1 localhost ip6-localhost\n")
                root.rename(target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return target


@dataclass
class Machine:
    """A copy of the fresh rootfs; sh() runs a shell script in it as root or as USER, offline unless online."""

    root: Path

    def sh(self, script: str, *, user: str = "root", online: bool = False, cwd: str | None = None,
           timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        home = "/root" if user == "root" else f"/home/{user}"
        flags = ["--quiet", "--pipe", "--register=no", "--keep-unit", "-D", str(self.root), f"--user={user}",
                 f"--chdir={cwd or home}", "--setenv=LANG=C.UTF-8", "--setenv=COLUMNS=80",
                 f"--bind={DOWNLOADS / 'apt'}:/var/cache/apt/archives",
                 f"--bind={DOWNLOADS / 'pip'}:/root/.cache/pip"]
        if user != "root":
            flags.append(f"--bind={DOWNLOADS / 'pip-user'}:{home}/.cache/pip")
        if online:
            flags.append("--resolv-conf=copy-host")
            if Path(sc.HOST_CA).exists():  # this host's network re-signs TLS: pip trusts what the host trusts
                flags.append(f"--bind-ro={sc.HOST_CA}:{PIP_CA}")
        else:
            flags += ["--private-network", "--resolv-conf=off"]
        inner = " ".join(["exec", "systemd-nspawn", *(sc._quote(a) for a in flags),
                          "/bin/bash", "-lc", sc._quote(script)])
        Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 f"mount -t tmpfs tmpfs /run/systemd/nspawn && {inner}"],
                                capture_output=True, text=True, timeout=timeout)
        result.seconds = time.monotonic() - started  # type: ignore[attr-defined]
        return result

    def ok(self, script: str, **kw) -> str:
        """sh() that must succeed; its failure shows the script and the end of what it printed."""
        result = self.sh(script, **kw)
        assert result.returncode == 0, (f"{script!r} exited {result.returncode}:\n"
                                        f"{(result.stdout + result.stderr)[-4000:]}")
        return result.stdout

    def copy_checkout(self, dest: str, owner: str = "root") -> None:
        """This checkout's files (what a clone or a source archive holds) at dest in the machine."""
        target = self.root / dest.lstrip("/")
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=sc.REPO, check=True, capture_output=True).stdout.decode().split("\0")
        for name in filter(None, files):
            source = sc.REPO / name
            if source.is_file() or source.is_symlink():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name, follow_symlinks=False)
        if owner != "root":
            self.ok(f"chown -R {owner}: {dest}")


@contextlib.contextmanager
def fresh_machine() -> Iterator[Machine]:
    """A copy of the fresh rootfs, removed after."""
    base = fresh_rootfs()
    for sub in ("apt", "pip", "pip-user"):
        (DOWNLOADS / sub).mkdir(parents=True, exist_ok=True)
    (DOWNLOADS / "pip-user").chmod(0o777)  # the user's pip cache, whatever UID the copy gives them
    workdir = Path(tempfile.mkdtemp(prefix="natlink-fresh-", dir="/var/tmp"))
    try:
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(workdir / "root")], check=True, timeout=300)
        if Path(sc.HOST_CA).exists():
            (workdir / "root/etc/pip.conf").write_text(f"[global]\ncert = {PIP_CA}\n")
        yield Machine(root=workdir / "root")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
