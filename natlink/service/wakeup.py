"""The main loop's only wake-up: signal numbers on a socket pair, written by CPython's C-level handler through
signal.set_wakeup_fd, and by Service.stop()/request_reload() from any thread."""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading


class Wakeup:
    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)

    def wait(self, timeout: float) -> bytes:
        """The signal numbers that arrived within ``timeout`` (empty when none did).

        Not threading.Event + a Python handler: a process-directed signal may be taken by any thread, and
        CPython then only flags it for the main thread, which sleeps on in its futex (seen: the main thread
        back in restart_syscall, SIGTERM/SIGHUP unhandled for the whole tick). The C-level handler writes the
        wakeup fd whichever thread it runs on, so this select always wakes."""
        ready, _, _ = select.select([self._r], [], [], timeout)
        got = b""
        if ready:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while data := self._r.recv(4096):
                    got += data
        return got

    def send(self, signum: int) -> None:
        with contextlib.suppress(OSError):  # a full buffer already holds a wake-up
            self._w.send(bytes([signum]))

    def install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # The Python handlers do nothing on purpose: installing one makes the C-level handler write the signal
        # number to the wakeup fd, and wait() returns it. A handler that took a lock (Event.set) could also
        # deadlock against the main thread holding that same lock when the handler runs.
        signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _ignore_signal)


def _ignore_signal(signum: int, frame: object) -> None:
    """See Wakeup.install_signals: the wakeup fd carries the signal to the main loop."""
