"""sd_notify over a real AF_UNIX datagram socket standing in for systemd's."""

from __future__ import annotations

import os
import socket

import pytest

from natlink.service.notify import Notifier


@pytest.fixture
def systemd_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_messages_reach_the_socket(systemd_socket):
    path, sock = systemd_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("mappings ok")
    assert sock.recv(4096).decode() == f"READY=1\nMAINPID={os.getpid()}\nSTATUS=mappings ok"
    n.status("line one\nline two")
    assert sock.recv(4096) == b"STATUS=line one"
    n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.reloading()
    assert sock.recv(4096) == b"RELOADING=1"
    n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_socket():
    name = f"natlink-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_without_systemd_everything_is_a_quiet_no_op(tmp_path):
    n = Notifier.from_env({})
    assert not n.enabled and n.watchdog_interval is None
    assert n.ready() is False
    gone = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.watchdog() is False  # a missing socket is not an error


@pytest.mark.parametrize("env, interval", [
    ({"WATCHDOG_USEC": "60000000"}, 30.0),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
    ({"WATCHDOG_USEC": "junk"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_the_timeout(env, interval):
    assert Notifier.from_env(env).watchdog_interval == interval


def test_a_receiver_that_stops_reading_never_blocks_the_sender(tmp_path):
    # A bound socket nobody reads: its queue fills up. A blocking send would hang here (pytest-timeout);
    # natlink's gives up on that datagram and says so.
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        notifier = Notifier(path)
        results = [notifier.status(f"round {i} " + "x" * 200) for i in range(5000)]
    assert results[0] is True
    assert results[-1] is False  # the queue was full: dropped, not waited for
