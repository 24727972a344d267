"""The service's main loop hears SIGTERM/SIGHUP whichever thread the kernel hands them to, and stop() /
request_reload() from any thread."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from natlink.config import parse_config
from natlink.service.runner import Service

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    cfg = parse_config('[router]\ngateway = "192.0.2.1"\n'
                       '[[mapping]]\nname = "rdp"\nprotocol = "tcp"\nexternal_port = 3390\n'
                       f'[service]\nstate_dir = "{tmp_path / "state"}"\n', tmp_path / "natlink.toml")
    saved = {s: signal.getsignal(s) for s in SIGNALS}
    svc = Service(cfg, events=False)
    svc._install_signals()
    try:
        yield svc
    finally:
        signal.set_wakeup_fd(-1)
        for s, handler in saved.items():
            signal.signal(s, handler)


def signal_from_another_thread(service: Service, signum: int) -> threading.Thread:
    """The case that used to be lost: while the main thread sleeps, the signal runs its C handler on another
    thread; a Python handler setting a threading.Event then left the main thread asleep for the whole tick.
    The signal goes once the main thread has entered the service's wait (an event, not a guessed delay)."""
    waiting = threading.Event()
    wait = service._wakeup.wait

    def wait_and_say(timeout: float) -> bytes:
        waiting.set()
        return wait(timeout)

    service._wakeup.wait = wait_and_say  # type: ignore[method-assign]

    def send() -> None:
        waiting.wait(10)
        signal.pthread_kill(threading.get_ident(), signum)  # to this thread: its C handler runs here

    t = threading.Thread(target=send)
    t.start()
    return t


def test_sighup_taken_by_another_thread_wakes_the_main_loop(service: Service) -> None:
    sender = signal_from_another_thread(service, signal.SIGHUP)
    t0 = time.monotonic()
    service._wait_for_command(10)
    assert time.monotonic() - t0 < 5
    assert service._reload_requested and not service._stopping
    sender.join()


def test_sigterm_taken_by_another_thread_stops(service: Service) -> None:
    sender = signal_from_another_thread(service, signal.SIGTERM)
    t0 = time.monotonic()
    service._wait_for_command(10)
    assert time.monotonic() - t0 < 5
    assert service._stopping
    sender.join()


def test_stop_and_reload_from_any_thread(service: Service) -> None:
    threading.Thread(target=service.request_reload).start()
    service._wait_for_command(10)
    assert service._reload_requested and not service._stopping
    threading.Thread(target=service.stop).start()
    service._wait_for_command(10)
    assert service._stopping

