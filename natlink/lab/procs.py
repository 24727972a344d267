"""Small process helpers shared by the lab's daemons (miniupnpd, knotd) and its cleanup."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, timeout: float = 2.0) -> None:
    """SIGTERM, wait, then SIGKILL; never raises (teardown must always get to the end)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


class Daemon:
    """What the lab's daemons share: one foreground process whose pid is the daemon's (so stop() and the
    stale-lab cleanup can kill it reliably), configured by <workdir>/<stem>.conf, logging to <workdir>/<stem>.log.
    Subclasses are dataclasses with ``workdir`` and ``proc`` fields."""

    stem = "daemon"
    workdir: str
    proc: subprocess.Popen[bytes] | None

    @property
    def conf_path(self) -> str:
        return os.path.join(self.workdir, f"{self.stem}.conf")

    @property
    def log_path(self) -> str:
        return os.path.join(self.workdir, f"{self.stem}.log")

    @property
    def pid(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        return None

    def launch(self, argv: Sequence[str]) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # Ctrl-C in the terminal must not kill it first

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; never raises."""
        proc, self.proc = self.proc, None
        stop_process(proc)

    def exited_early(self) -> str | None:
        """If the process died, the tail of its log (for a useful LabError)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return tail(self.log_path)


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def pid_starttime(pid: int) -> int | None:
    """Kernel start time of a process (field 22 of /proc/pid/stat); guards against pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def tail(path: str, lines: int = 15) -> str:
    """Last lines of a daemon's log, to put into a LabError when it died on start."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).strip()
    except OSError:
        return ""
